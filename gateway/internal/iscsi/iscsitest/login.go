package iscsitest

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// LoginOptions describe one login.
type LoginOptions struct {
	InitiatorName string
	TargetName    string // empty for discovery
	Discovery     bool
	// CHAP, when set, authenticates with CHAP (mutual when MutualUser and
	// MutualSecret are set: the target must prove it knows MutualSecret).
	CHAP *login.Credentials
	// Keys are operational keys offered in the operational stage; they
	// replace the defaults of the same name.
	Keys []login.KV
}

// LoginError is a login the target refused.
type LoginError struct {
	Status login.Status
	Keys   []login.KV
}

func (e *LoginError) Error() string { return "iscsitest: login refused: " + e.Status.String() }

// defaultKeys are the operational keys offered unless LoginOptions.Keys
// overrides them: what a performance-minded initiator asks for.
var defaultKeys = []login.KV{
	{Key: "HeaderDigest", Value: "None"},
	{Key: "DataDigest", Value: "None"},
	{Key: "MaxRecvDataSegmentLength", Value: "262144"},
	{Key: "InitialR2T", Value: "No"},
	{Key: "ImmediateData", Value: "Yes"},
	{Key: "MaxBurstLength", Value: "1048576"},
	{Key: "FirstBurstLength", Value: "262144"},
	{Key: "MaxOutstandingR2T", Value: "4"},
	{Key: "DefaultTime2Wait", Value: "0"},
	{Key: "DefaultTime2Retain", Value: "0"},
	{Key: "ErrorRecoveryLevel", Value: "0"},
	{Key: "MaxConnections", Value: "1"},
}

// Login runs the whole login. On success the connection is in the full
// feature phase with digests switched on as negotiated.
func (in *Initiator) Login(o LoginOptions) error {
	itt := in.NextITT()
	first := []login.KV{{Key: "InitiatorName", Value: o.InitiatorName}}
	if o.Discovery {
		first = append(first, login.KV{Key: "SessionType", Value: "Discovery"})
	} else {
		first = append(first, login.KV{Key: "SessionType", Value: "Normal"},
			login.KV{Key: "TargetName", Value: o.TargetName})
	}
	in.TargetKeys = make(map[string]string)
	if o.CHAP != nil {
		if err := in.chapStage(itt, first, o.CHAP); err != nil {
			return err
		}
		first = nil
	} else {
		first = append(first, login.KV{Key: "AuthMethod", Value: "None"})
		resp, err := in.loginStep(itt, login.StageSecurity, login.StageOperational, true, first)
		if err != nil {
			return err
		}
		first = nil
		if resp.Transit && resp.NSG == login.StageFullFeature {
			return in.finishLogin(resp)
		}
	}
	keys := mergeKeys(defaultKeys, o.Keys)
	offered := kvMap(keys)
	resp, err := in.loginStep(itt, login.StageOperational, login.StageFullFeature, true, append(first, keys...))
	for err == nil && !(resp.Transit && resp.NSG == login.StageFullFeature) {
		resp, err = in.loginStep(itt, login.StageOperational, login.StageFullFeature, true, nil)
	}
	if err != nil {
		return err
	}
	in.applyParams(offered)
	return in.finishLogin(resp)
}

func (in *Initiator) finishLogin(resp *pdu.LoginResp) error {
	in.TSIH = resp.TSIH
	in.CmdSN = resp.ExpCmdSN
	p := &in.Params
	in.Reader.SetHeaderDigest(p.HeaderDigest)
	in.Reader.SetDataDigest(p.DataDigest)
	in.Writer.SetHeaderDigest(p.HeaderDigest)
	in.Writer.SetDataDigest(p.DataDigest)
	in.Reader.SetMaxDataSegmentLength(p.MaxRecvDataSegment)
	return nil
}

// loginStep sends one Login Request (fetching continued responses) and
// returns the response, its keys merged into TargetKeys.
func (in *Initiator) loginStep(itt uint32, csg, nsg uint8, transit bool, kvs []login.KV) (*pdu.LoginResp, error) {
	req := &pdu.LoginReq{
		Transit: transit, CSG: csg, NSG: nsg, ISID: in.ISID, TSIH: in.TSIH, ITT: itt, CID: in.CID,
		CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, Data: login.EncodeText(kvs),
	}
	var text []byte
	for {
		if err := in.Send(req.Encode()); err != nil {
			return nil, err
		}
		p, err := in.Recv()
		if err != nil {
			return nil, err
		}
		resp, err := pdu.ParseLoginResp(p)
		if err != nil {
			return nil, err
		}
		text = append(text, resp.Data...)
		if status := login.Status(uint16(resp.StatusClass)<<8 | uint16(resp.StatusDetail)); status != login.StatusSuccess {
			kvs, _ := login.ParseText(text)
			return nil, &LoginError{Status: status, Keys: kvs}
		}
		if !resp.Continue {
			got, err := login.ParseText(text)
			if err != nil {
				return nil, err
			}
			for _, kv := range got {
				in.TargetKeys[kv.Key] = kv.Value
			}
			return resp, nil
		}
		// Fetch the rest of a continued response with an empty request.
		req.Data, req.Transit = nil, false
	}
}

// chapStage runs the security stage with CHAP and transits to the
// operational stage.
func (in *Initiator) chapStage(itt uint32, first []login.KV, c *login.Credentials) error {
	first = append(first, login.KV{Key: "AuthMethod", Value: "CHAP"})
	if _, err := in.loginStep(itt, login.StageSecurity, login.StageOperational, false, first); err != nil {
		return err
	}
	if in.TargetKeys["AuthMethod"] != "CHAP" {
		return fmt.Errorf("iscsitest: target chose AuthMethod %q", in.TargetKeys["AuthMethod"])
	}
	if _, err := in.loginStep(itt, login.StageSecurity, login.StageOperational, false,
		[]login.KV{{Key: "CHAP_A", Value: "5"}}); err != nil {
		return err
	}
	id, err := strconv.Atoi(in.TargetKeys["CHAP_I"])
	if err != nil || id < 0 || id > 255 {
		return fmt.Errorf("iscsitest: bad CHAP_I %q", in.TargetKeys["CHAP_I"])
	}
	challenge, err := DecodeBinary(in.TargetKeys["CHAP_C"])
	if err != nil {
		return err
	}
	answer := []login.KV{
		{Key: "CHAP_N", Value: c.User},
		{Key: "CHAP_R", Value: "0x" + hex.EncodeToString(CHAPResponse(byte(id), c.Secret, challenge))},
	}
	mutual := c.MutualUser != "" && c.MutualSecret != ""
	var myID byte
	var myChallenge []byte
	if mutual {
		buf := make([]byte, 17)
		if _, err := rand.Read(buf); err != nil {
			return err
		}
		myID, myChallenge = buf[0], buf[1:]
		answer = append(answer,
			login.KV{Key: "CHAP_I", Value: strconv.Itoa(int(myID))},
			login.KV{Key: "CHAP_C", Value: "0x" + hex.EncodeToString(myChallenge)})
	}
	resp, err := in.loginStep(itt, login.StageSecurity, login.StageOperational, true, answer)
	if err != nil {
		return err
	}
	if mutual {
		if in.TargetKeys["CHAP_N"] != c.MutualUser {
			return errors.New("iscsitest: mutual CHAP_N mismatch")
		}
		got, err := DecodeBinary(in.TargetKeys["CHAP_R"])
		if err != nil || string(got) != string(CHAPResponse(myID, c.MutualSecret, myChallenge)) {
			return errors.New("iscsitest: target failed mutual CHAP")
		}
	}
	if !resp.Transit || resp.NSG != login.StageOperational {
		return errors.New("iscsitest: target did not leave the security stage")
	}
	return nil
}

// CHAPResponse is MD5(identifier || secret || challenge).
func CHAPResponse(id byte, secret string, challenge []byte) []byte {
	h := md5.New()
	h.Write([]byte{id})
	h.Write([]byte(secret))
	h.Write(challenge)
	return h.Sum(nil)
}

// DecodeBinary decodes an iSCSI binary value (0x hex or 0b base64).
func DecodeBinary(v string) ([]byte, error) {
	switch {
	case strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X"):
		return hex.DecodeString(v[2:])
	case strings.HasPrefix(v, "0b") || strings.HasPrefix(v, "0B"):
		return base64.StdEncoding.DecodeString(v[2:])
	}
	return nil, fmt.Errorf("iscsitest: not a binary value: %q", v)
}

// applyParams works out the full feature phase values from what was
// offered and what the target answered.
func (in *Initiator) applyParams(offered map[string]string) {
	val := func(k string) string {
		if v, ok := in.TargetKeys[k]; ok {
			return v
		}
		return offered[k]
	}
	num := func(k string, def int) int {
		n, err := strconv.Atoi(val(k))
		if err != nil {
			return def
		}
		return n
	}
	p := &in.Params
	p.HeaderDigest = val("HeaderDigest") == "CRC32C"
	p.DataDigest = val("DataDigest") == "CRC32C"
	p.InitialR2T = val("InitialR2T") != "No"
	p.ImmediateData = val("ImmediateData") == "Yes"
	p.MaxBurstLength = num("MaxBurstLength", 262144)
	p.FirstBurstLength = num("FirstBurstLength", 65536)
	p.MaxOutstandingR2T = num("MaxOutstandingR2T", 1)
	p.MaxRecvDataSegment = 8192
	if n, err := strconv.Atoi(offered["MaxRecvDataSegmentLength"]); err == nil {
		p.MaxRecvDataSegment = n
	}
	// The target's declaration is in its answer (declarative key).
	p.MaxSendDataSegment = 8192
	if n, err := strconv.Atoi(in.TargetKeys["MaxRecvDataSegmentLength"]); err == nil {
		p.MaxSendDataSegment = n
	}
}

func mergeKeys(base, over []login.KV) []login.KV {
	out := make([]login.KV, 0, len(base)+len(over))
	seen := make(map[string]bool)
	for _, kv := range over {
		seen[kv.Key] = true
	}
	for _, kv := range base {
		if !seen[kv.Key] {
			out = append(out, kv)
		}
	}
	return append(out, over...)
}

func kvMap(kvs []login.KV) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}
