package main

import (
	"fmt"
	"slices"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// addressFlag is -address: the source addresses a host may log in from.
// Each use adds an IP address or CIDR; "any" stands for the empty list
// (any address). Not given at all, an existing host keeps its list and a
// new one may log in from any address.
type addressFlag struct {
	set, any bool
	list     []string
}

func (f *addressFlag) String() string { return "" }

func (f *addressFlag) Set(v string) error {
	f.set = true
	if v == "any" {
		f.any = true
	} else {
		if _, err := config.ParseAddress(v); err != nil {
			return fmt.Errorf("%v: want an IP address, a CIDR or any", err)
		}
		f.list = append(f.list, v)
	}
	if f.any && len(f.list) > 0 {
		return fmt.Errorf("any excludes other addresses")
	}
	return nil
}

// resolve is the list to store (the cluster stores it canonical): the
// addresses given, none for any, or cur when -address was not given.
func (f *addressFlag) resolve(cur []string) []string {
	switch {
	case !f.set:
		return slices.Clone(cur)
	case f.any:
		return nil
	}
	return slices.Clone(f.list)
}
