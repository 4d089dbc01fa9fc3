package trainer

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// ExitPreempted is the exit status of an `agent train` child that was
// preempted (SIGTERM): it wrote a checkpoint and can be resumed. The agent
// reports such a job as preempted rather than failed.
const ExitPreempted = 3

// SignalContext returns a context cancelled on SIGTERM or SIGINT, for the
// ctx of Run: Run then checkpoints and returns ErrPreempted. Call stop to
// release the signal handler.
func SignalContext(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(parent, syscall.SIGTERM, os.Interrupt)
}
