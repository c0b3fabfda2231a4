"""Build hook: compile River's protobuf schema (river_client/proto/*.proto) to Python.

The `.proto` files are the source of truth; the generated `_pb2.py` modules and their `.pyi`
stubs are build products, written beside the schema by protoc from the grpcio-tools package.
Files import each other by their path from the project root, so the generated modules import
each other as `river_client.proto.<name>_pb2`; protobuf's well-known types (Timestamp, Empty)
come from the include folder that grpcio-tools ships.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO_DIR = ROOT / "river_client" / "proto"


def compile_protos() -> None:
    """Run protoc on every schema file whose Python module is missing or older."""
    import grpc_tools
    from grpc_tools import protoc

    well_known_types = Path(grpc_tools.__file__).resolve().parent / "_proto"

    for proto in sorted(PROTO_DIR.glob("*.proto")):
        generated = proto.with_name(proto.stem + "_pb2.py")
        if generated.exists() and generated.stat().st_mtime >= proto.stat().st_mtime:
            continue
        status = protoc.main(
            [
                "protoc",
                f"--proto_path={ROOT}",
                f"--proto_path={well_known_types}",
                f"--python_out={ROOT}",
                f"--pyi_out={ROOT}",
                str(proto.relative_to(ROOT)),
            ]
        )
        if status != 0:
            raise SystemExit(f"protoc failed on {proto.relative_to(ROOT)} (exit {status})")


class BuildWithProtos(build_py):
    """`build_py` that compiles the protobuf schema first (also used by editable installs)."""

    def run(self) -> None:
        compile_protos()
        super().run()


if __name__ == "__main__":
    setup(cmdclass={"build_py": BuildWithProtos})
