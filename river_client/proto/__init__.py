"""River's protobuf schema: our own wire-compatible .proto files and the modules protoc builds."""
