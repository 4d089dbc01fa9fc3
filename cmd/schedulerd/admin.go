package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joulehq/joule/storage"
	"github.com/joulehq/joule/web/client"
)

// AdminTokenFile is the admin token schedulerd writes into its data dir on
// first start (mode 0600).
const AdminTokenFile = "admin.token"

const tokenUsage = `schedulerd token: manage API tokens of a running schedulerd.

Tokens go through the API (the running schedulerd holds the database's file
lock), with an admin token: JOULE_TOKEN, else DATA_DIR/admin.token. Each
token has a name and a role: admin (everything), user (submits jobs as its
name, cancels only its own, reads the rest) or agent (heartbeats for the node
of its name only). The secret is shown once, at create; schedulerd stores only
its SHA-256 hash.

Usage:
  schedulerd token create --role user --name alice    prints the new token
  schedulerd token list
  schedulerd token revoke --name alice

Examples:
  export JOULE_TOKEN=$(schedulerd token create --role user --name alice)
  schedulerd token create --role agent --name gpu-node-01 > /etc/joule/agent.token
  schedulerd token list --server https://sched:7070 --ca ./joule-data/tls/ca.crt

Flags:
`

const backupUsage = `schedulerd backup: copy a consistent snapshot of a running schedulerd's
database to FILE (admin token: JOULE_TOKEN, else DATA_DIR/admin.token). The
copy holds every transaction committed before it began; schedulerd keeps
serving meanwhile. Restore it with schedulerd restore --from FILE (offline).

Example:
  schedulerd backup --out /backups/joule-$(date +%F).db

Flags:
`

const restoreUsage = `schedulerd restore: put a snapshot made by schedulerd backup in place of
DATA_DIR/joule.db, offline. The snapshot is verified first (bbolt's page
structure, the schema version, every job, node and token decoded); restore
refuses, changing nothing, while a schedulerd runs on the data dir. The
database it replaces is kept as DATA_DIR/joule.db.before-restore.

Example:
  schedulerd restore --from /backups/joule-2026-11-28.db --data-dir /var/lib/joule

Flags:
`

const compactUsage = `schedulerd compact: rewrite DATA_DIR/joule.db without its free pages
(space left by deleted and rewritten values), offline: stop schedulerd first.

Example:
  schedulerd compact --data-dir /var/lib/joule

Flags:
`

// adminFlags are the flags of the commands that talk to a running schedulerd.
type adminFlags struct {
	server, dataDir, ca string
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.server, "server", envOr("JOULE_SERVER", client.DefaultServer), "schedulerd's URL (env JOULE_SERVER)")
	fs.StringVar(&a.dataDir, "data-dir", "./joule-data", "schedulerd's data dir, for admin.token and tls/ca.crt")
	fs.StringVar(&a.ca, "ca", os.Getenv("JOULE_CA"), "CA certificate to trust for https (env JOULE_CA; default DATA_DIR/tls/ca.crt when it exists)")
}

// client returns an admin client: token from JOULE_TOKEN or the data dir.
func (a *adminFlags) client() (*client.Client, error) {
	c, err := client.New(a.server)
	if err != nil {
		return nil, err
	}
	c.Token = os.Getenv("JOULE_TOKEN")
	if c.Token == "" {
		tok, err := client.ReadTokenFile(filepath.Join(a.dataDir, AdminTokenFile))
		if err != nil {
			return nil, fmt.Errorf("%w; set JOULE_TOKEN to an admin token or --data-dir to schedulerd's data dir", err)
		}
		c.Token = tok
	}
	ca := a.ca
	if ca == "" && strings.HasPrefix(a.server, "https:") {
		if p := filepath.Join(a.dataDir, tlsDir, caCertFile); fileExists(p) {
			ca = p
		}
	}
	if ca != "" {
		if err := c.UseCA(ca); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func parseSub(fs *flag.FlagSet, help string, args []string, stderr io.Writer) (int, bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, help)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unknown argument %q (see --help)\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

func runToken(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, strings.TrimSuffix(tokenUsage, "Flags:\n"))
			return 0
		}
		fmt.Fprint(stderr, strings.TrimSuffix(tokenUsage, "Flags:\n"))
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("schedulerd token "+sub, flag.ContinueOnError)
	var af adminFlags
	af.register(fs)
	name := fs.String("name", "", "the token's name: a user name (role user), a node name (role agent)")
	role := fs.String("role", "user", "admin, user or agent")
	if code, ok := parseSub(fs, tokenUsage, args[1:], stderr); !ok {
		return code
	}
	c, err := af.client()
	if err != nil {
		fmt.Fprintln(stderr, "schedulerd token:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch sub {
	case "create":
		if *name == "" {
			fmt.Fprintln(stderr, "schedulerd token create: --name is required, e.g. --name alice")
			return 2
		}
		t, err := c.CreateToken(ctx, *name, *role)
		if err != nil {
			fmt.Fprintln(stderr, "schedulerd token create:", err)
			return 1
		}
		fmt.Fprintln(stdout, t.Token)
	case "list":
		list, err := c.Tokens(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "schedulerd token list:", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
		for _, t := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.Role, t.CreatedAt.Format(time.RFC3339))
		}
		tw.Flush()
	case "revoke":
		if *name == "" {
			fmt.Fprintln(stderr, "schedulerd token revoke: --name is required")
			return 2
		}
		if err := c.RevokeToken(ctx, *name); err != nil {
			fmt.Fprintln(stderr, "schedulerd token revoke:", err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked %s\n", *name)
	}
	return 0
}

func runBackup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schedulerd backup", flag.ContinueOnError)
	var af adminFlags
	af.register(fs)
	out := fs.String("out", "", "file to write the snapshot to (required)")
	if code, ok := parseSub(fs, backupUsage, args, stderr); !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "schedulerd backup: --out FILE is required")
		return 2
	}
	c, err := af.client()
	if err != nil {
		fmt.Fprintln(stderr, "schedulerd backup:", err)
		return 1
	}
	n, err := backupTo(c, *out)
	if err != nil {
		fmt.Fprintln(stderr, "schedulerd backup:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", *out, n)
	return 0
}

// backupTo writes the snapshot to a temporary file, syncs it, checks that it
// opens as a joule database and renames it into place.
func backupTo(c *client.Client, out string) (int64, error) {
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := c.Backup(context.Background(), f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = storage.Verify(tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return n, err
	}
	return n, os.Rename(tmp, out)
}

func runRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schedulerd restore", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./joule-data", "schedulerd's data dir")
	from := fs.String("from", "", "the snapshot to restore, a schedulerd backup file (required)")
	if code, ok := parseSub(fs, restoreUsage, args, stderr); !ok {
		return code
	}
	if *from == "" {
		fmt.Fprintln(stderr, "schedulerd restore: --from FILE is required (a file written by schedulerd backup --out FILE)")
		return 2
	}
	kept, err := storage.Restore(*dataDir, *from)
	if err != nil {
		fmt.Fprintln(stderr, "schedulerd", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s from %s\n", filepath.Join(*dataDir, storage.FileName), *from)
	if kept != "" {
		fmt.Fprintf(stdout, "the database it replaced is %s\n", kept)
	}
	return 0
}

func runCompact(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schedulerd compact", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./joule-data", "schedulerd's data dir")
	if code, ok := parseSub(fs, compactUsage, args, stderr); !ok {
		return code
	}
	before, after, err := storage.Compact(*dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "schedulerd", err)
		return 1
	}
	fmt.Fprintf(stdout, "compacted %s: %d -> %d bytes\n", filepath.Join(*dataDir, storage.FileName), before, after)
	return 0
}
