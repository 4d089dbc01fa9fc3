package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// decodeStrict decodes one JSON value and rejects unknown fields and trailing data.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("trailing data after the JSON body")
	}
	return nil
}

// bodyError says what was wrong with a request body; a body over the cap
// says so and names the limit instead of Go's "http: request body too large".
func bodyError(err error) string {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok || strings.Contains(err.Error(), "request body too large") {
		return fmt.Sprintf("request body too large: over %d KiB; send less (one job spec or heartbeat per request)", maxBodyBytes>>10)
	}
	return err.Error()
}

// readBody reads a request body of at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, errors.New("read body: " + bodyError(err))
	}
	return data, nil
}
