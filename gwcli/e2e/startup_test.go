package e2e

// Start-up time of "gwcli ls /" against a real cluster (etcd, Ceph, a
// gateway's API) holding 200 disks mapped to a target and 200 hosts,
// each seeing one of them: ceph-iscsi's gwcli took 7 s for 46 disks.
//
//	go test ./gwcli/e2e/ -run TestLsStartup200 -v
//
// GWCLI_E2E_LS_DISKS changes the number of disks and hosts (at most 256,
// the LUNs of one target).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// api sends one request to the API with the test's token.
func api(method, path string, body any) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, env.url+"/api/v1"+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+env.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// each runs f(0..n-1) on workers goroutines and returns the first error.
func each(n, workers int, f func(i int) error) error {
	var mu sync.Mutex
	var first error
	next := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func TestLsStartup200(t *testing.T) {
	if env.skip != "" {
		t.Skip("skipping: " + env.skip)
	}
	n := 200
	if s := os.Getenv("GWCLI_E2E_LS_DISKS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 || n > 256 {
			t.Fatalf("GWCLI_E2E_LS_DISKS=%q: expected 1-256", s)
		}
	}
	sfx := fmt.Sprintf("%04x", rand.IntN(1<<16))
	iqn := "iqn.2024-01.io.rbdgw:ls" + sfx
	disk := func(i int) string { return fmt.Sprintf("rbd/ls%s_%03d", sfx, i) }
	host := func(i int) string { return fmt.Sprintf("iqn.1994-05.com.example:ls%s-host%03d", sfx, i) }
	t.Cleanup(func() {
		if out, errs, code := gw(t, "/iscsi-targets", "delete", iqn); code != 0 { // with its LUN maps and hosts
			t.Errorf("cleanup: delete %s: exit %d %s%s", iqn, code, out, errs)
		}
		err := each(n, 4, func(i int) error {
			st, _, b, err := api("DELETE", "/disks/"+disk(i)+"?remove_image=true", nil)
			if err == nil && st != 200 && st != 404 {
				err = fmt.Errorf("DELETE disk %s: %d %s", disk(i), st, b)
			}
			return err
		})
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	// One target served by one gateway; n disks (16 MiB images made by
	// the API), each mapped to the target and seen by its own host.
	start := time.Now()
	ok(t, "/iscsi-targets", "create", iqn)
	ok(t, "/iscsi-targets/"+iqn+"/gateways", "create", env.gateways[0], portal(0))
	err := each(n, 4, func(i int) error {
		st, _, b, err := api("PUT", "/disks/"+disk(i), map[string]any{"size": "16M"})
		if err != nil || st != 201 {
			return fmt.Errorf("PUT disk %s: %d %s %v", disk(i), st, b, err)
		}
		// Maps change the target, so parallel ones can lose every retry
		// the API makes (409 conflict): try again.
		var h http.Header
		for range 20 {
			st, h, b, err = api("POST", "/targets/"+iqn+"/luns", map[string]any{"disk": disk(i)})
			if err != nil || st != 409 || !strings.Contains(string(b), `"code":"conflict"`) {
				break
			}
			time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
		}
		if err != nil || st != 201 {
			return fmt.Errorf("POST lun %s: %d %s %v", disk(i), st, b, err)
		}
		loc := h.Get("Location")
		id, err := strconv.Atoi(loc[strings.LastIndex(loc, "/")+1:])
		if err != nil {
			return fmt.Errorf("POST lun %s: Location %q", disk(i), loc)
		}
		st, _, b, err = api("PUT", "/targets/"+iqn+"/hosts/"+host(i), map[string]any{"luns": []int{id}})
		if err != nil || st != 200 && st != 201 {
			return fmt.Errorf("PUT host %s: %d %s %v", host(i), st, b, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("made %d disks (images), LUNs and hosts in %v", n, time.Since(start).Round(time.Millisecond))

	var runs []time.Duration
	for range 5 {
		cmd := exec.Command(env.gwcli, "ls", "/")
		home := t.TempDir()
		cmd.Env = append(os.Environ(), "RBDGW_API_URL="+env.url, "RBDGW_API_TOKEN="+env.token, "HOME="+home, "XDG_CONFIG_HOME="+home)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		t0 := time.Now()
		err := cmd.Run()
		d := time.Since(t0)
		if err != nil {
			t.Fatalf("gwcli ls /: %v\n%s", err, errb.String())
		}
		s := out.String()
		if c, c2 := strings.Count(s, "o- ls"+sfx+"_"), strings.Count(s, "o- rbd/ls"+sfx+"_"); c != n || c2 != n {
			t.Fatalf("gwcli ls / shows %d of the %d disks under /disks and %d under the target:\n%s", c, n, c2, s)
		}
		if c := strings.Count(s, ":ls"+sfx+"-host"); c < n {
			t.Fatalf("gwcli ls / shows %d of the %d hosts", c, n)
		}
		runs = append(runs, d)
	}
	slices.Sort(runs)
	t.Logf("gwcli ls / with %d disks and %d hosts (real etcd, Ceph and gateway API at %s), wall time of the whole process over %d runs: min %v, median %v, max %v",
		n, n, env.url, len(runs), runs[0].Round(time.Millisecond), runs[len(runs)/2].Round(time.Millisecond), runs[len(runs)-1].Round(time.Millisecond))
}
