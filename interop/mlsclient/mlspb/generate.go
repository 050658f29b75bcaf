// Package mlspb is the Go code generated from the mlswg interop interface,
// mls_client.proto (kept in shared/interop, outside this module): the
// messages and the MLSClient gRPC service.
//
// Regenerate with `go generate` in this directory; it needs protoc
// (Debian's protobuf-compiler, libprotoc 3.21.12) and, on PATH,
// protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
package mlspb

//go:generate protoc -I ../../../../shared/interop --go_out=. --go_opt=paths=source_relative --go_opt=Mmls_client.proto=github.com/spacepanda/spacepanda/interop/mlsclient/mlspb;mlspb --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mmls_client.proto=github.com/spacepanda/spacepanda/interop/mlsclient/mlspb;mlspb mls_client.proto
