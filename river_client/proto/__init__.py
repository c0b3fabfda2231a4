"""River's protobuf schema (our own .proto files, wire compatible) and the modules protoc builds from it."""
