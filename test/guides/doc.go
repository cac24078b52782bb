// Package guides runs the user guides in docs/ as they are written: a guide
// is a script with prose around it, and its test is to run it on a fleet.
//
// The conventions a guide follows (docs/platform-team.md, docs/tenants.md,
// docs/operators.md, docs/architecture.md):
//
//   - A block fenced ```sh is a command the reader runs. The test runs every
//     one, in document order, guide after guide, each with
//     `bash -euo pipefail` in one working directory, and expects exit code 0.
//   - A ```sh block whose leading comment lines include `# expect: fail`
//     shows a command that fails on purpose (a denial, a policy that
//     refuses); the test expects a non-zero exit code. Leading
//     `# expect-output: TEXT` lines name text the output (stdout and stderr)
//     must contain, in either kind of block; a block that fails on purpose
//     must have one, so that it cannot pass by failing for another reason.
//   - Commands use only $HUB_KUBECONFIG (the hub cluster), $MEMBER_KUBECONFIG
//     (one member cluster), $GATEWAY_ADDRESS (the shared Gateway's address,
//     which the guides show how to read), variables the block sets itself,
//     and files written by earlier blocks. They run from a checkout of this
//     repository: charts/ is there, gatehousectl and kubectl-gatehouse are on
//     PATH.
//   - A ```yaml block whose first line is `# file: NAME.yaml` is written to
//     NAME.yaml in the working directory when the test reaches it; a later
//     ```sh block applies or reads it. Other ```yaml blocks are excerpts.
//   - Whatever cannot run on the test bed (a command that needs a kubelet,
//     a load balancer or the internet) is fenced ```text, never ```sh;
//     ```bash and ```shell are refused, so that nothing meant to run is
//     silently skipped.
//
// The test bed starts as new clusters: a hub with cert-manager and one
// member, without Gatehouse's or the Gateway API's CRDs (the charts install
// them) and not yet joined (the guides join it). What a real cluster
// provides and the test bed lacks — a kubelet running the Deployments the
// charts create, the teams' applications — the test provides itself: the
// hub and proxy processes start after the `helm install` that would create
// them (the stagehands in guides_test.go), and the applications' Services
// have endpoints the test serves.
//
// TestGuideBlocks and TestGuidesAreLinked check the conventions and the
// links without running anything (they also run with -short).
package guides
