package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

// main speaks protocol v1 on stdin/stdout: one JSON request per line in, one reply per line out.
func main() {
	dir := flag.String("dir", ".", "folder that relative part paths are relative to")
	flag.Parse()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		var req Request
		d := json.NewDecoder(bytes.NewReader(in.Bytes()))
		d.UseNumber()
		var rep Reply
		if err := d.Decode(&req); err != nil {
			rep = Reply{ID: req.ID, Error: fmt.Sprintf("NotImplementedError: bad request: %v", err)}
		} else {
			rep = Answer(req, *dir)
		}
		line, _ := json.Marshal(rep)
		out.Write(append(line, '\n'))
		out.Flush()
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "go-hasher:", err)
		os.Exit(1)
	}
}
