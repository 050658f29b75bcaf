package channel_test

import "github.com/spacepanda/spacepanda/mls/wire"

func wireMarshal(v wire.Marshaler) ([]byte, error) { return wire.Marshal(v) }
