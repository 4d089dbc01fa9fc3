package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
)

// Roles a token may have.
const (
	// RoleAdmin may do everything: tokens, backups, any job, any node.
	RoleAdmin = "admin"
	// RoleUser submits jobs as itself, cancels only its own, reads the rest.
	RoleUser = "user"
	// RoleAgent heartbeats for the node of its own name and nothing else.
	RoleAgent = "agent"
)

// tokenPrefix marks joule tokens, so that a leaked one is recognisable.
const tokenPrefix = "jt_"

// Principal is who a request comes from: the token's name and role.
type Principal struct {
	Name string
	Role string
}

type principalKey struct{}

func principalOf(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// NewToken returns a fresh random token (256 bits) and its stored form.
func NewToken(name, role string) (secret string, t storage.Token, err error) {
	if err := validateToken(name, role); err != nil {
		return "", storage.Token{}, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", storage.Token{}, fmt.Errorf("new token: %w", err)
	}
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, storage.Token{Name: name, Role: role, HashHex: hashToken(secret), CreatedAt: time.Now().UTC()}, nil
}

func validateToken(name, role string) error {
	if !slices.Contains([]string{RoleAdmin, RoleUser, RoleAgent}, role) {
		return &api.FieldError{Field: "role", Msg: fmt.Sprintf("%q: use admin, user or agent", role)}
	}
	// Token names are user names (user), node names (agent) or free (admin):
	// the node-name rule covers all three.
	if err := api.ValidateNodeName(name); err != nil {
		return &api.FieldError{Field: "name", Msg: err.Error()}
	}
	return nil
}

// hashToken is the stored form of a token. Tokens are 256 random bits, so a
// plain SHA-256 is enough: there is nothing to guess by brute force.
func hashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// tokens is the in-memory index of every valid token by hash: the stored ones
// and the ephemeral ones of in-process agents.
type tokens struct {
	mu     sync.RWMutex
	byHash map[string]storage.Token
}

func (ts *tokens) load(list []storage.Token) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.byHash = map[string]storage.Token{}
	for _, t := range list {
		ts.byHash[t.HashHex] = t
	}
}

func (ts *tokens) lookup(secret string) (storage.Token, bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	t, ok := ts.byHash[hashToken(secret)]
	return t, ok
}

func (ts *tokens) put(t storage.Token) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for h, old := range ts.byHash {
		if old.Name == t.Name {
			delete(ts.byHash, h)
		}
	}
	ts.byHash[t.HashHex] = t
}

func (ts *tokens) remove(name string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for h, t := range ts.byHash {
		if t.Name == name {
			delete(ts.byHash, h)
		}
	}
}

// EphemeralToken makes a token that lives only in this process's memory, for
// the simulated agents and the demo client that run inside schedulerd.
func (s *Server) EphemeralToken(name, role string) (string, error) {
	secret, t, err := NewToken(name, role)
	if err != nil {
		return "", err
	}
	s.tokens.put(t)
	return secret, nil
}

// EnsureAdminToken makes the first admin token when the database has none and
// returns its secret ("" when an admin token already exists). The caller
// writes it to DATA_DIR/admin.token.
func EnsureAdminToken(db *storage.DB, write func(secret string) error) (created bool, err error) {
	list, err := db.Tokens()
	if err != nil {
		return false, err
	}
	for _, t := range list {
		if t.Role == RoleAdmin {
			return false, nil
		}
	}
	secret, t, err := NewToken("admin", RoleAdmin)
	if err != nil {
		return false, err
	}
	// The file first: a crash between the two leaves a file with a token
	// that does not work yet, and the next start makes a new one.
	if err := write(secret); err != nil {
		return false, err
	}
	if err := db.PutToken(t); err != nil {
		return false, err
	}
	return true, nil
}

// authed wraps a handler: the request needs a valid bearer token whose role is
// one of roles.
func (s *Server) authed(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		secret, ok := strings.CutPrefix(auth, "Bearer ")
		if auth == "" {
			if c, err := r.Cookie(tokenCookie); err == nil && c.Value != "" {
				secret, ok = c.Value, true // the dashboard's browser
			}
		}
		if !ok || secret == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="joule"`)
			writeError(w, http.StatusUnauthorized, "missing token: send \"Authorization: Bearer TOKEN\" "+
				"(the CLI reads JOULE_TOKEN; an admin makes tokens with `schedulerd token create`)")
			return
		}
		t, ok := s.tokens.lookup(strings.TrimSpace(secret))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="joule", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid or revoked token; ask an admin for a new one (`schedulerd token create`)")
			return
		}
		if !slices.Contains(roles, t.Role) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("token %q has role %s; %s needs role %s",
				t.Name, t.Role, r.Pattern, strings.Join(roles, " or ")))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, Principal{Name: t.Name, Role: t.Role})))
	}
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// TokenReply answers POST /api/v1/tokens; Token is shown this once only.
type TokenReply struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Token string `json:"token"`
}

// TokenInfo is one token in GET /api/v1/tokens: never the secret.
type TokenInfo struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, maxBodyBytes), &req); err != nil {
		writeError(w, http.StatusBadRequest, "token request: "+bodyError(err))
		return
	}
	secret, t, err := NewToken(req.Name, req.Role)
	if err != nil {
		writeError(w, http.StatusBadRequest, "token request: "+err.Error())
		return
	}
	if err := s.db.PutToken(t); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.tokens.put(t)
	s.log.Info("token created", "name", t.Name, "role", t.Role, "by", principalOf(r.Context()).Name)
	writeJSON(w, http.StatusCreated, TokenReply{Name: t.Name, Role: t.Role, Token: secret})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	list, err := s.db.Tokens()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]TokenInfo, 0, len(list))
	for _, t := range list {
		out = append(out, TokenInfo{Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	list, err := s.db.Tokens()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	admins, role := 0, ""
	for _, t := range list {
		if t.Role == RoleAdmin {
			admins++
		}
		if t.Name == name {
			role = t.Role
		}
	}
	if role == "" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no token named %q; `schedulerd token list` shows them", name))
		return
	}
	if role == RoleAdmin && admins == 1 {
		writeError(w, http.StatusConflict, fmt.Sprintf("token %q is the only admin token; create another admin token first", name))
		return
	}
	if _, err := s.db.DeleteToken(name); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.tokens.remove(name)
	s.log.Info("token revoked", "name", name, "by", principalOf(r.Context()).Name)
	writeJSON(w, http.StatusOK, TokenInfo{Name: name, Role: role})
}

// tokenCookie carries the token of a browser on the dashboard.
const tokenCookie = "joule_token"

// page wraps a dashboard page: ?token=TOKEN stores the token in an HttpOnly,
// SameSite=Strict cookie and redirects to the page without it; after that
// the cookie authenticates the browser like a bearer token.
func (s *Server) page(h http.HandlerFunc) http.HandlerFunc {
	authed := s.authed(h, RoleAdmin, RoleUser)
	return func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("token"); tok != "" {
			if _, ok := s.tokens.lookup(tok); !ok {
				writeError(w, http.StatusUnauthorized, "invalid or revoked token in ?token=; ask an admin for a new one (`schedulerd token create`)")
				return
			}
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: tok, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			q := r.URL.Query()
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		authed(w, r)
	}
}
