// Package main is a reference external hasher for pytest-mmhash's conformance protocol v1
// (docs/spec.md section 11): what a router written in Go needs to agree with SGLang 0.5.23.
//
// It answers pad-only requests (a caller's mm_hashes entry, or a preset item hash) for the pad
// schemes of every release, and feature requests for the CPU path of the pin (sha256-raw).
// Everything else gets an error reply that says so.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Pin is the SGLang release whose CPU content scheme this program implements.
const Pin = "0.5.23"

// Part is one tensor's raw C-order bytes in a file.
type Part struct {
	Dtype  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	Nbytes int64  `json:"nbytes"`
}

// Request is one protocol v1 request (a feature, or a pad-only mm_hash / preset_hash request).
type Request struct {
	V             int             `json:"v"`
	ID            string          `json:"id"`
	SglangVersion string          `json:"sglang_version"`
	Device        string          `json:"device"`
	Kind          string          `json:"kind"`
	Parts         []Part          `json:"parts"`
	Layout        json.RawMessage `json:"layout"`
	MmHash        *string         `json:"mm_hash"`
	PresetHash    *json.Number    `json:"preset_hash"`
}

// Reply is one protocol v1 reply: Hash and PadValues, or Error ("Type: message").
type Reply struct {
	ID        string        `json:"id"`
	Hash      *json.Number  `json:"hash,omitempty"`
	PadValues []json.Number `json:"pad_values,omitempty"`
	Error     string        `json:"error,omitempty"`
}

var (
	two64    = new(big.Int).Lsh(big.NewInt(1), 64)
	mask64   = new(big.Int).Sub(two64, big.NewInt(1))
	two30    = new(big.Int).Lsh(big.NewInt(1), 30)
	padShift = big.NewInt(1_000_000)
)

// Answer computes the reply to one request; relative part paths are resolved against baseDir.
func Answer(req Request, baseDir string) Reply {
	var h *big.Int
	var pads []*big.Int
	var err error
	switch {
	case req.V != 1:
		err = fmt.Errorf("NotImplementedError: protocol version %d (this program speaks 1)", req.V)
	case req.MmHash != nil:
		h, pads, err = fromMmHash(*req.MmHash, req.SglangVersion)
	case req.PresetHash != nil:
		preset, ok := new(big.Int).SetString(req.PresetHash.String(), 10)
		if !ok {
			err = fmt.Errorf("NotImplementedError: preset_hash %s is not an integer", *req.PresetHash)
		} else {
			h, pads, err = withPads(preset, req.SglangVersion)
		}
	default:
		h, pads, err = fromFeature(req, baseDir)
	}
	return reply(req.ID, h, pads, err)
}

func reply(id string, h *big.Int, pads []*big.Int, err error) Reply {
	if err != nil {
		return Reply{ID: id, Error: err.Error()}
	}
	n := json.Number(h.String())
	r := Reply{ID: id, Hash: &n}
	for _, p := range pads {
		r.PadValues = append(r.PadValues, json.Number(p.String()))
	}
	return r
}

// era is what a release does with an item hash (spec: pad schemes, mask64, mm_hashes).
type era struct {
	mmHashes, mask64 bool
	pad              string // "pad-mod30" | "pad-shift-1e6" | "pad-wide4"
}

func eraOf(version string) (era, error) {
	v, err := parseVersion(version)
	if err != nil {
		return era{}, err
	}
	e := era{pad: "pad-mod30"}
	if !less(v, []int{0, 5, 9}) {
		e.pad = "pad-shift-1e6"
	}
	e.mmHashes = !less(v, []int{0, 5, 13})
	e.mask64 = !less(v, []int{0, 5, 19})
	if !less(v, []int{0, 5, 23}) {
		e.pad = "pad-wide4"
	}
	return e, nil
}

// parseVersion turns "0.4.6.post5" into [0 4 6 5] (a missing post counts as 0).
func parseVersion(s string) ([]int, error) {
	head, post, _ := strings.Cut(s, ".post")
	var out []int
	for _, f := range strings.Split(head, ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("NotImplementedError: sglang version %q is not understood", s)
		}
		out = append(out, n)
	}
	p := 0
	if post != "" {
		n, err := strconv.Atoi(post)
		if err != nil {
			return nil, fmt.Errorf("NotImplementedError: sglang version %q is not understood", s)
		}
		p = n
	}
	return append(out, p), nil
}

func less(v, than []int) bool {
	for i := range than {
		if i >= len(v) || v[i] != than[i] {
			return i < len(v) && v[i] < than[i]
		}
	}
	return false
}

// withPads stores h as the item hash of release version and derives the pad value(s).
func withPads(h *big.Int, version string) (*big.Int, []*big.Int, error) {
	e, err := eraOf(version)
	if err != nil {
		return nil, nil, err
	}
	if e.mask64 {
		h = new(big.Int).And(h, mask64)
	}
	switch e.pad {
	case "pad-wide4":
		var id [8]byte
		binary.BigEndian.PutUint64(id[:], new(big.Int).And(h, mask64).Uint64())
		return h, wide4(id[:]), nil
	case "pad-shift-1e6":
		return h, []*big.Int{new(big.Int).Add(padShift, new(big.Int).Mod(h, two30))}, nil
	default: // big.Int.Mod is Euclidean: like Python's h % 2**30, never negative
		return h, []*big.Int{new(big.Int).Mod(h, two30)}, nil
	}
}

// wide4 is pad-wide4: four 62-bit slices of SHA256(tag || identity), each plus 1_000_000.
func wide4(identity []byte) []*big.Int {
	d := sha256.Sum256(append([]byte("sglang-mm-wide-pad-v1"), identity...))
	pads := make([]*big.Int, 4)
	for k := 0; k < 4; k++ {
		x := binary.BigEndian.Uint64(d[8*k:8*k+8]) & (1<<62 - 1)
		pads[k] = new(big.Int).Add(padShift, new(big.Int).SetUint64(x))
	}
	return pads
}

// fromMmHash is the tokenizer manager's int(hex_hash, 16) then set_hash (0.5.13+).
func fromMmHash(text, version string) (*big.Int, []*big.Int, error) {
	e, err := eraOf(version)
	if err != nil {
		return nil, nil, err
	}
	if !e.mmHashes {
		return nil, nil, fmt.Errorf("NotImplementedError: sglang %s has no mm_hashes request field", version)
	}
	h, ok := pythonHexInt(text)
	if !ok {
		return nil, nil, fmt.Errorf("ValueError: invalid literal for int() with base 16: %q", text)
	}
	return withPads(h, version)
}

// pythonHexInt parses like Python's int(text, 16): surrounding whitespace, a sign, an optional
// 0x prefix, and single underscores between digits (or right after the prefix).
func pythonHexInt(text string) (*big.Int, bool) {
	s := strings.Trim(text, " \t\n\r\v\f")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
		s = strings.TrimPrefix(s, "_")
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") ||
		strings.Trim(s, "0123456789abcdefABCDEF_") != "" {
		return nil, false
	}
	h, ok := new(big.Int).SetString(strings.ReplaceAll(s, "_", ""), 16)
	if !ok {
		return nil, false
	}
	if neg {
		h.Neg(h)
	}
	return h, true
}

// fromFeature is SGLang 0.5.23's hash_feature on its CPU path: SHA-256 of the raw bytes.
func fromFeature(req Request, baseDir string) (*big.Int, []*big.Int, error) {
	if req.SglangVersion != Pin || req.Device != "cpu" {
		return nil, nil, fmt.Errorf("NotImplementedError: only the cpu path of sglang %s is implemented", Pin)
	}
	if err := pinRaises(req); err != nil {
		return nil, nil, err
	}
	d := sha256.New()
	for _, p := range req.Parts {
		if err := copyPart(d, p, baseDir); err != nil {
			return nil, nil, fmt.Errorf("NotImplementedError: reading part %s: %v", p.Path, err)
		}
	}
	h := new(big.Int).SetUint64(binary.BigEndian.Uint64(d.Sum(nil)[:8]))
	return withPads(h, req.SglangVersion)
}

// pinRaises is where SGLang 0.5.23's hash_feature raises: a tuple, an empty list, or a list whose
// first element is not a tensor all go to data_hash(tuple(...)), and sha256 refuses a tuple.
func pinRaises(req Request) error {
	typeErr := errors.New("TypeError: object supporting the buffer API required")
	switch req.Kind {
	case "tensor", "ndarray", "bytes":
		return nil
	case "tuple":
		return typeErr
	case "list":
		var layout []json.RawMessage
		if err := json.Unmarshal(req.Layout, &layout); err != nil {
			return fmt.Errorf("NotImplementedError: bad layout: %v", err)
		}
		if len(layout) == 0 || strings.HasPrefix(strings.TrimSpace(string(layout[0])), "[") {
			return typeErr
		}
		return nil
	}
	return fmt.Errorf("NotImplementedError: kind %q", req.Kind)
}

func copyPart(w io.Writer, p Part, baseDir string) error {
	path := p.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(baseDir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.NewSectionReader(f, p.Offset, p.Nbytes))
	if err == nil && n != p.Nbytes {
		err = fmt.Errorf("short file: %d of %d bytes", n, p.Nbytes)
	}
	return err
}
