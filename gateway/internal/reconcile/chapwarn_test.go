package reconcile

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/config"
)

func TestWarnNameOnlyAccess(t *testing.T) {
	chap := &config.CHAP{User: "u", Secret: "secretsecret1"}
	const a, b = "iqn.2024-01.org.example:a", "iqn.2024-01.org.example:b"
	for _, tt := range []struct {
		name   string
		target config.Target
		warn   string // "" for none; else a part of the line
	}{
		{"every ACL with CHAP", config.Target{ACLs: []config.ACL{{InitiatorIQN: a, CHAP: chap}}}, ""},
		{"target CHAP covers the ACLs", config.Target{CHAP: chap, ACLs: []config.ACL{{InitiatorIQN: a}}, AllowAnyInitiator: true}, ""},
		{"nobody admitted", config.Target{}, ""},
		{"an ACL without CHAP", config.Target{ACLs: []config.ACL{{InitiatorIQN: a, CHAP: chap}, {InitiatorIQN: b}}}, "initiators=[" + b + "]"},
		{"any initiator without CHAP", config.Target{AllowAnyInitiator: true}, "allow_any_initiator=true"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			r := New(Options{Server: nullServer{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			tt.target.IQN = "iqn.2024-01.org.example:t"
			tt.target.TPGT = 1
			for range 2 { // once per apply
				if err := r.Apply(&config.Config{Targets: []config.Target{tt.target}}); err != nil {
					t.Fatal(err)
				}
			}
			n := strings.Count(logs.String(), "target admits initiators by name alone")
			switch {
			case tt.warn == "" && n != 0:
				t.Errorf("warned: %s", logs.String())
			case tt.warn != "" && (n != 2 || !strings.Contains(logs.String(), tt.warn)):
				t.Errorf("want one warning per apply with %q: %s", tt.warn, logs.String())
			}
		})
	}
}
