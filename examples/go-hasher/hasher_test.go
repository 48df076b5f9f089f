package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vector is a protocol v1 request plus the reply fields SGLang gave (from mmhash vectors export).
type vector struct {
	Request
	Hash      *json.Number  `json:"hash"`
	PadValues []json.Number `json:"pad_values"`
	Error     *string       `json:"error"`
}

// implemented says whether this program claims the vector: pad-only requests of every release,
// feature requests on the cpu path of the pin.
func implemented(v vector) bool {
	if v.MmHash != nil || v.PresetHash != nil {
		return true
	}
	return v.SglangVersion == Pin && v.Device == "cpu"
}

func errorType(s string) string { return strings.TrimSpace(strings.SplitN(s, ":", 2)[0]) }

// TestVectors answers every vector this program implements and compares with SGLang's values.
// MMHASH_VECTORS names the folder written by `mmhash vectors export`.
func TestVectors(t *testing.T) {
	dir := os.Getenv("MMHASH_VECTORS")
	if dir == "" {
		t.Fatal("set MMHASH_VECTORS to a folder written by `mmhash vectors export DIR`")
	}
	f, err := os.Open(filepath.Join(dir, "vectors.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	checked, skipped, pinCPU := 0, 0, 0
	for sc.Scan() {
		var v vector
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("bad vector line: %v", err)
		}
		if !implemented(v) {
			skipped++
			continue
		}
		checked++
		if v.MmHash == nil && v.PresetHash == nil {
			pinCPU++
		}
		got := Answer(v.Request, dir)
		switch {
		case v.Error != nil:
			if got.Error == "" || errorType(got.Error) != errorType(*v.Error) {
				t.Errorf("%s: want error %q, got %+v", v.ID, *v.Error, got)
			}
		case got.Error != "":
			t.Errorf("%s: want hash %s, got error %q", v.ID, *v.Hash, got.Error)
		case got.Hash.String() != v.Hash.String() || !samePads(got.PadValues, v.PadValues):
			t.Errorf("%s: want hash %s pads %v, got hash %s pads %v",
				v.ID, *v.Hash, v.PadValues, *got.Hash, got.PadValues)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if pinCPU == 0 {
		t.Fatalf("no cpu-path feature vector of sglang %s in %s", Pin, dir)
	}
	t.Logf("checked %d vectors (%d cpu-path features of sglang %s), skipped %d (other paths/releases)",
		checked, pinCPU, Pin, skipped)
}

func samePads(a, b []json.Number) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

// TestPythonHexInt pins the int(text, 16) corner cases that the vectors may not all cover.
func TestPythonHexInt(t *testing.T) {
	ok := map[string]string{"0": "0", "0x_f": "15", "-0X1": "-1", " +f_f\t": "255", "00ff": "255"}
	for in, want := range ok {
		if h, valid := pythonHexInt(in); !valid || h.String() != want {
			t.Errorf("pythonHexInt(%q) = %v, %v; want %s", in, h, valid, want)
		}
	}
	for _, in := range []string{"", "0x", "_1", "1_", "1__2", "g", "- 1", "0x-1", "1 2"} {
		if _, valid := pythonHexInt(in); valid {
			t.Errorf("pythonHexInt(%q) accepted; Python rejects it", in)
		}
	}
}
