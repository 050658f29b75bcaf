package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve serves srv on ln until ctx ends, then shuts down gracefully:
// waiting long-polls and event streams are answered at once, other
// requests get 5 s. It logs the start and the shutdown. The caller closes
// srv and its Store afterwards.
func Serve(ctx context.Context, srv *Server, ln net.Listener, log *slog.Logger) error {
	// Requests run under reqCtx, cancelled when shutdown starts, so that
	// long-polls and event streams end instead of holding Shutdown.
	reqCtx, cancelReqs := context.WithCancel(context.Background())
	defer cancelReqs()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return reqCtx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("relay: serving", "addr", ln.Addr().String())
	select {
	case <-ctx.Done():
		log.Info("relay: shutting down: answering waiting requests, closing connections")
		defer log.Info("relay: shut down")
		cancelReqs()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
		}
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
