package iscsi

import (
	"fmt"
	"testing"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
)

func TestDebugTUR(t *testing.T) {
	e := newEnv(t)
	in := e.dial()
	in.Timeout = 1e9
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatal(err)
	}
	_, err := in.Do(&iscsitest.Cmd{CDB: cdbTUR()})
	fmt.Println("err", err)
	e.logs.mu.Lock()
	for _, r := range e.logs.records {
		fmt.Println(r)
	}
	e.logs.mu.Unlock()
}
