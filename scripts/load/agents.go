package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/joulehq/joule/web/client"
)

// The agents run in a process of their own by default. Real agents run on
// their own machines: sharing a Go runtime with 256 busy submitters puts
// each heartbeat's reply behind the submitters' goroutines in the load
// generator's own run queue, and that wait is the harness's, not
// schedulerd's. --one-process keeps them together, for comparison.

// agentSet is the simulated agents, in this process.
type agentSet struct {
	lat        latencies
	registered atomic.Int64
	errs       atomic.Int64
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func startAgents(c *client.Client, n int, interval, jobDur time.Duration) *agentSet {
	ctx, cancel := context.WithCancel(context.Background())
	s := &agentSet{cancel: cancel}
	for i := range n {
		a := &standIn{name: fmt.Sprintf("load-%04d", i+1), jobs: map[string]*standInJob{}}
		s.wg.Go(func() { a.run(ctx, c, interval, jobDur, &s.lat, &s.registered, &s.errs) })
	}
	return s
}

// waitRegistered waits until all n agents have registered.
func (s *agentSet) waitRegistered(n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for s.registered.Load() < int64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d agents registered in 2m", s.registered.Load(), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func (s *agentSet) stop() {
	s.cancel()
	s.wg.Wait()
}

// window is the heartbeats of one measurement window.
type window struct {
	All    []time.Duration         `json:"all"`
	ByKind [nKinds][]time.Duration `json:"by_kind"`
	Errors int64                   `json:"errors"`
	// CPUSeconds is the agents' process's CPU time at the window's end (0
	// when they share the submitters' process).
	CPUSeconds float64 `json:"cpu_s"`
}

// agents is where the agents run: this process or a child.
type agents interface {
	open() error            // start a measurement window
	close() (window, error) // end it, stop the agents and return what it saw
	cpu() (float64, error)  // the agents' own process's CPU seconds; 0 here
}

type localAgents struct{ s *agentSet }

func (l localAgents) open() error { l.s.lat.reset(); return nil }
func (l localAgents) close() (window, error) {
	all, by := l.s.lat.snapshot()
	l.s.stop()
	return window{All: all, ByKind: by, Errors: l.s.errs.Load()}, nil
}
func (l localAgents) cpu() (float64, error) { return 0, nil }

// childAgents is the agents in a child process (runChild), driven by lines
// on its stdin: "open" starts the window, "close" ends it; the child answers
// "registered" once all agents have, and the window as JSON at the end.
type childAgents struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func spawnAgents(server, tokenFile string, n int, interval, jobDur time.Duration) (*childAgents, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"--agents-child", "--server", server, "--token-file", tokenFile,
		"--agents", fmt.Sprint(n), "--heartbeat", interval.String(), "--job-duration", jobDur.String()}
	if cpuProfilePath != "" {
		args = append(args, "--cpuprofile", cpuProfilePath+".agents")
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childAgents{cmd: cmd, in: in, out: bufio.NewReader(out)}
	line, err := c.out.ReadString('\n')
	if err != nil || line != "registered\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("agents' process: %q, %v", line, err)
	}
	return c, nil
}

func (c *childAgents) open() error {
	_, err := io.WriteString(c.in, "open\n")
	return err
}

func (c *childAgents) close() (window, error) {
	var w window
	if _, err := io.WriteString(c.in, "close\n"); err != nil {
		return w, err
	}
	err := json.NewDecoder(c.out).Decode(&w)
	c.in.Close()
	if werr := c.cmd.Wait(); err == nil {
		err = werr
	}
	return w, err
}

func (c *childAgents) cpu() (float64, error) { return procCPU(c.cmd.Process.Pid) }

// runChild is the agents' process: it runs n agents, says "registered",
// opens the window on "open" and, on "close", writes the window and exits.
func runChild(server, tokenFile string, n int, interval, jobDur time.Duration) error {
	tok, err := client.ReadTokenFile(tokenFile)
	if err != nil {
		return fmt.Errorf("--token-file: %w", err)
	}
	s := startAgents(newClient(server, tok), n, interval, jobDur)
	if err := s.waitRegistered(n); err != nil {
		return err
	}
	fmt.Println("registered")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "open":
			s.lat.reset()
		case "close":
			all, by := s.lat.snapshot()
			cpu, _ := procCPU(os.Getpid())
			s.stop()
			return json.NewEncoder(os.Stdout).Encode(window{All: all, ByKind: by, Errors: s.errs.Load(), CPUSeconds: cpu})
		}
	}
	s.stop()
	return errors.New("agents' process: stdin closed before the window did")
}
