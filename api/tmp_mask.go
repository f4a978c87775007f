package api

import "github.com/rbdgw/rbdgw/gateway/config"

func maskSecretsTmp(b []byte) []byte { return b }

func aclLUNsTmp(a config.ACL) []uint64 { return nil }
