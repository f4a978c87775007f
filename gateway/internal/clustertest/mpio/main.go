// Command mpio is the initiator the multi-gateway tests (gateway/e2e/cluster)
// drive gateways with: it behaves like a multipath host that fails over
// between the portals of one target, and it reads the ALUA and
// reservation state of a logical unit through a chosen portal. It prints
// JSON on stdout, one object per line.
//
//	mpio write-verify -target IQN -portal A -portal B [-chunks N] [-interval D] [-duration D]
//	mpio identity     -target IQN -portal P
//	mpio pr           -target IQN -portal P OP [ARGS]
//
// It lives under gateway/ because it is built on the test initiator in
// gateway/internal/iscsi/iscsitest.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: mpio write-verify|identity|pr FLAGS"))
	}
	var err error
	switch os.Args[1] {
	case "write-verify":
		err = writeVerify(os.Args[2:])
	case "identity":
		err = identity(os.Args[2:])
	case "pr":
		err = reservation(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mpio:", err)
	os.Exit(1)
}

// emit prints one JSON line.
func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(b))
}
