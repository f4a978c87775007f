//go:build pacific

package e2e

// buildTags are the tags the daemon under test is built with: the same as
// this test binary, so rbd disks work when the tests are built for librbd.
const buildTags = "pacific"
