//go:build !pacific

package e2e

const buildTags = ""
