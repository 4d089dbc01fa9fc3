package agent

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// runPowerProgram runs `prog node` with a timeout; an empty prog does
// nothing. The error carries the program's output.
func runPowerProgram(prog, node string, timeout time.Duration) error {
	if prog == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, node)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		return fmt.Errorf("%s %s: %w: %s", prog, node, err, strings.TrimSpace(out.String()))
	}
	return nil
}
