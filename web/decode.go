package web

import (
	"encoding/json"
	"errors"
	"io"
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
