package mlsclient

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
)

// directConn is a grpc.ClientConnInterface that calls a Server in process
// through the generated method handlers, with requests and responses
// encoded and decoded as on the wire but without HTTP/2: most scenario runs
// use it, since under the race detector the transport costs as much as the
// MLS work; the loopback gRPC runs (startClients) cover the transport.
type directConn struct {
	srv     *Server
	methods map[string]grpc.MethodDesc
}

func newDirectConn(s *Server) *directConn {
	c := &directConn{srv: s, methods: map[string]grpc.MethodDesc{}}
	for _, m := range mlspb.MLSClient_ServiceDesc.Methods {
		c.methods["/"+mlspb.MLSClient_ServiceDesc.ServiceName+"/"+m.MethodName] = m
	}
	return c
}

// copyProto copies a message through its wire encoding.
func copyProto(from, to any) error {
	b, err := proto.Marshal(from.(proto.Message))
	if err != nil {
		return status.Errorf(codes.Internal, "marshal: %v", err)
	}
	if err := proto.Unmarshal(b, to.(proto.Message)); err != nil {
		return status.Errorf(codes.Internal, "unmarshal: %v", err)
	}
	return nil
}

func (c *directConn) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	m, ok := c.methods[method]
	if !ok {
		return status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	resp, err := m.Handler(c.srv, ctx, func(in any) error { return copyProto(args, in) }, nil)
	if err != nil {
		if _, ok := status.FromError(err); !ok {
			return status.Error(codes.Unknown, err.Error())
		}
		return err
	}
	return copyProto(resp, reply)
}

func (c *directConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("directConn: no streams in MLSClient")
}

// directClients returns n clients, each a fresh Server called in process.
func directClients(n int) []mlspb.MLSClientClient {
	var out []mlspb.MLSClientClient
	for range n {
		out = append(out, mlspb.NewMLSClientClient(newDirectConn(New(Options{}))))
	}
	return out
}
