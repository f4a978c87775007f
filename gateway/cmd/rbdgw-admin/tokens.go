package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rbdgw/rbdgw/gateway/audit"
	"github.com/rbdgw/rbdgw/gateway/tokens"
)

// The token and audit commands are the break-glass access to the REST
// API's credentials: they talk to etcd directly, so they work when no
// admin token is at hand (lost, revoked, expired) and while no API server
// runs. Token changes made here are recorded in the audit trail as method
// CLI, with the local user and host as the remote address.

func (a *admin) token(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("token create|list|revoke")
	}
	switch sub, args := args[0], args[1:]; sub {
	case "create":
		return a.tokenCreate(ctx, args)
	case "list":
		if len(args) != 0 {
			return usagef("token list takes no arguments")
		}
		return a.tokenList(ctx)
	case "revoke":
		if len(args) != 1 {
			return usagef("token revoke ID")
		}
		return a.tokenRevoke(ctx, args[0])
	default:
		return usagef("unknown token command %q", sub)
	}
}

func (a *admin) tokenCreate(ctx context.Context, args []string) error {
	fs := newFlags("token create")
	name := fs.String("name", "", "name of the token (1-64 of A-Z a-z 0-9 . _ -)")
	roleName := fs.String("role", "", "viewer, operator or admin")
	ttl := fs.Duration("ttl", 0, "lifetime, e.g. 720h (0: never expires)")
	file := fs.String("o", "", "write the token to this file (mode 0600) instead of printing it")
	if _, err := parseInterleaved(fs, args, 0); err != nil {
		return err
	}
	if *name == "" || *roleName == "" {
		return usagef("token create needs -name and -role")
	}
	role, err := tokens.ParseRole(*roleName)
	if err != nil {
		return usagef("%v", err)
	}
	tok, info, err := a.tokens.Create(ctx, *name, role, *ttl)
	if err != nil {
		return err
	}
	if *file != "" {
		if err := tokens.WriteFile(*file, tok); err != nil {
			// Nobody holds the token: take it back.
			if rerr := a.tokens.Revoke(ctx, info.ID); rerr != nil {
				return fmt.Errorf("write %s: %w (and token %s could not be revoked: %v)", *file, err, info.ID, rerr)
			}
			return fmt.Errorf("write %s: %w (token not created)", *file, err)
		}
	}
	body, _ := json.Marshal(map[string]any{"name": info.Name, "role": info.Role, "ttl": ttl.String()})
	a.auditCLI(ctx, "token create", string(body))
	if *file != "" {
		fmt.Fprintf(a.out, "ok (token %s written to %s)\n", info.ID, *file)
		return nil
	}
	// The token alone on its line, so that scripts can capture it; it is
	// not shown again.
	fmt.Fprintln(a.out, tok)
	return nil
}

func (a *admin) tokenList(ctx context.Context) error {
	list, err := a.tokens.List(ctx)
	if err != nil {
		return err
	}
	return printTokens(a.out, list, time.Now())
}

func printTokens(out io.Writer, list []tokens.Info, now time.Time) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tEXPIRES")
	for _, t := range list {
		exp := "never"
		if t.Expires != nil {
			exp = t.Expires.UTC().Format(time.RFC3339)
			if t.Expired(now) {
				exp += " (expired)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.Created.UTC().Format(time.RFC3339), exp)
	}
	return tw.Flush()
}

func (a *admin) tokenRevoke(ctx context.Context, id string) error {
	if err := a.tokens.Revoke(ctx, id); err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"id": id})
	a.auditCLI(ctx, "token revoke", string(body))
	fmt.Fprintf(a.out, "ok (token %s revoked)\n", id)
	return nil
}

// auditCLI records a change made here. The change is done by then, so a
// failure to record it is reported, not returned.
func (a *admin) auditCLI(ctx context.Context, what, body string) {
	remote := "local"
	if u, err := user.Current(); err == nil {
		remote += ":" + u.Username
	}
	if h, err := os.Hostname(); err == nil {
		remote += "@" + h
	}
	e := audit.Entry{TokenName: "rbdgw-admin", Role: string(tokens.RoleAdmin), Remote: remote,
		Method: "CLI", Path: what, Body: body, Status: 200}
	if err := a.audit.Record(ctx, e); err != nil {
		fmt.Fprintf(os.Stderr, "rbdgw-admin: warning: the change is made but not in the audit trail: %v\n", err)
	}
}

func (a *admin) auditList(ctx context.Context, args []string) error {
	fs := newFlags("audit")
	n := fs.Int("n", 20, "how many of the newest entries to show")
	asJSON := fs.Bool("json", false, "print the entries as JSON, request bodies included")
	if _, err := parseInterleaved(fs, args, 0); err != nil {
		return err
	}
	if *n < 1 {
		return usagef("-n %d: want at least 1", *n)
	}
	entries, _, err := a.audit.List(ctx, *n, "")
	if err != nil {
		return err
	}
	if *asJSON {
		return a.print(entries)
	}
	return printAudit(a.out, entries)
}

func printAudit(out io.Writer, entries []audit.Entry) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTOKEN\tROLE\tREMOTE\tREQUEST\tSTATUS\tREVISION")
	for _, e := range entries {
		who := e.TokenName
		if e.TokenID != "" {
			who += " (" + e.TokenID + ")"
		}
		status := strconv.Itoa(e.Status)
		if e.Code != "" {
			status += " " + e.Code
		}
		rev := "-"
		if e.Revision != 0 {
			rev = strconv.FormatInt(e.Revision, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), orDash(who),
			orDash(e.Role), orDash(e.Remote), e.Method, e.Path, status, rev)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
