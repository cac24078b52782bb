package guides

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// guides are run in this order: each builds on what the one before it set up.
var guides = []string{"platform-team.md", "tenants.md", "operators.md", "architecture.md"}

// vars are the environment variables a guide's commands may use without
// setting them.
var vars = []string{"HUB_KUBECONFIG", "MEMBER_KUBECONFIG", "GATEWAY_ADDRESS"}

// block is one fenced code block of a guide.
type block struct {
	guide string
	line  int // of the opening fence, 1-based
	lang  string
	text  string
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.guide, b.line) }

// file is the name a ```yaml block asks to be written to, or "".
func (b block) file() string {
	first, _, _ := strings.Cut(b.text, "\n")
	name, ok := strings.CutPrefix(strings.TrimSpace(first), "# file:")
	if !ok {
		return ""
	}
	return strings.TrimSpace(name)
}

// directives are the values of the leading comment lines "# key: value".
func (b block) directives(key string) []string {
	var out []string
	for _, l := range strings.Split(b.text, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "#") {
			break
		}
		if v, ok := strings.CutPrefix(l, "# "+key+":"); ok {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func (b block) expectFail() bool { return slices.Contains(b.directives("expect"), "fail") }

// parseBlocks reads the fenced blocks of a Markdown file. A fence may be
// indented (inside a list); its content loses that indentation.
func parseBlocks(name, text string) ([]block, error) {
	var (
		out    []block
		cur    *block
		indent int
		body   []string
	)
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if cur == nil {
			if strings.HasPrefix(trimmed, "~~~") {
				return nil, fmt.Errorf("%s:%d: use ``` fences", name, i+1)
			}
			if info, ok := strings.CutPrefix(trimmed, "```"); ok {
				lang, _, _ := strings.Cut(strings.TrimSpace(info), " ")
				cur, indent, body = &block{guide: name, line: i + 1, lang: lang}, len(line)-len(trimmed), nil
			}
			continue
		}
		if strings.TrimSpace(trimmed) == "```" {
			cur.text = strings.Join(body, "\n") + "\n"
			out = append(out, *cur)
			cur = nil
			continue
		}
		for n := 0; n < indent && strings.HasPrefix(line, " "); n++ {
			line = line[1:]
		}
		body = append(body, line)
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: the block never closes", name, cur.line)
	}
	return out, nil
}

// readGuides parses every guide, in run order.
func readGuides(t *testing.T, root string) [][]block {
	t.Helper()
	var all [][]block
	for _, g := range guides {
		data, err := os.ReadFile(filepath.Join(root, "docs", g))
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := parseBlocks(g, string(data))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, blocks)
	}
	return all
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := env.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestParseBlocks(t *testing.T) {
	text := "intro\n```sh\n# expect: fail\n# expect-output: denied\nkubectl apply -f x.yaml\n```\n" +
		"- a list item:\n\n  ```yaml\n  # file: x.yaml\n  kind: X\n  ```\n```text\nout\n```\n"
	got, err := parseBlocks("g.md", text)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d blocks, want 3: %+v", len(got), got)
	}
	if b := got[0]; b.lang != "sh" || b.line != 2 || !b.expectFail() || !slices.Equal(b.directives("expect-output"), []string{"denied"}) {
		t.Errorf("sh block: %+v", b)
	}
	if b := got[1]; b.lang != "yaml" || b.file() != "x.yaml" || b.text != "# file: x.yaml\nkind: X\n" {
		t.Errorf("yaml block in a list: %+v, file %q", b, b.file())
	}
	if got[2].lang != "text" || got[0].file() != "" {
		t.Errorf("text block: %+v", got[2])
	}
	if _, err := parseBlocks("g.md", "```sh\nls\n"); err == nil {
		t.Errorf("an unclosed block parsed")
	}
}

var (
	varRef    = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	varAssign = regexp.MustCompile(`(?m)(?:^|[\s;(])(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=|(?:^|[\s;(])for\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s`)
	fileName  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*\.ya?ml$`)
)

// TestGuideBlocks checks the conventions of doc.go that can be checked
// without running anything.
func TestGuideBlocks(t *testing.T) {
	root := repoRoot(t)
	written := map[string]string{}
	var later []block // the sh blocks, to find what reads each file
	for _, blocks := range readGuides(t, root) {
		for _, b := range blocks {
			switch b.lang {
			case "":
				t.Errorf("%s: a block without a language: ```sh if it runs, ```text if not", b)
			case "bash", "shell", "zsh", "console-sh":
				t.Errorf("%s: a ```%s block: fence commands that run as ```sh, the rest as ```text", b, b.lang)
			case "sh":
				later = append(later, b)
				set := map[string]bool{}
				for _, m := range varAssign.FindAllStringSubmatch(b.text, -1) {
					set[m[1]+m[2]] = true // an assignment, or a for loop's variable
				}
				for _, m := range varRef.FindAllStringSubmatch(b.text, -1) {
					if !slices.Contains(vars, m[1]) && !set[m[1]] {
						t.Errorf("%s: $%s is neither one of %v nor set in the block", b, m[1], vars)
					}
				}
				for _, d := range b.directives("expect") {
					if d != "fail" {
						t.Errorf("%s: unknown directive '# expect: %s' (only 'fail')", b, d)
					}
				}
				if b.expectFail() && len(b.directives("expect-output")) == 0 {
					t.Errorf("%s: '# expect: fail' without '# expect-output:': say how it fails, or any failure passes", b)
				}
			case "yaml":
				f := b.file()
				if f == "" {
					continue
				}
				if !fileName.MatchString(f) {
					t.Errorf("%s: '# file: %s' is not a plain .yaml file name", b, f)
				}
				if prev, ok := written[f]; ok {
					t.Errorf("%s: %s is already written at %s", b, f, prev)
				}
				written[f] = b.String()
			}
		}
	}
	for f, where := range written {
		used := false
		for _, b := range later {
			if strings.Contains(b.text, f) {
				used = true
			}
		}
		if !used {
			t.Errorf("%s: no ```sh block uses %s", where, f)
		}
	}
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} +(.+)$`)
	notSlug = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// anchors are the fragment names GitHub gives the headings of a Markdown
// file: lower case, punctuation dropped, spaces turned into hyphens.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		slug := notSlug.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), "")
		out[strings.ReplaceAll(slug, " ", "-")] = true
	}
	return out
}

// TestGuidesAreLinked: README.md points to every guide; the guides' relative
// links, and every link to a guide from README.md and docs/, lead to files
// and headings that exist.
func TestGuidesAreLinked(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var readmeLinks []string
	for _, m := range mdLink.FindAllStringSubmatch(string(readme), -1) {
		readmeLinks = append(readmeLinks, m[1])
	}
	for _, g := range guides {
		if !slices.Contains(readmeLinks, "docs/"+g) {
			t.Errorf("README.md does not link docs/%s", g)
		}
	}
	sources, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	sources = append(sources, filepath.Join(root, "README.md"))
	for _, src := range sources {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, src)
		ours := slices.Contains(guides, filepath.Base(src)) && filepath.Base(filepath.Dir(src)) == "docs"
		for _, m := range mdLink.FindAllStringSubmatch(string(data), -1) {
			target, fragment, _ := strings.Cut(m[1], "#")
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path := src
			if target != "" {
				path = filepath.Join(filepath.Dir(src), target)
			}
			toGuide := filepath.Dir(path) == filepath.Join(root, "docs") && slices.Contains(guides, filepath.Base(path))
			if !ours && !toGuide {
				continue
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s links %s, which does not exist", name, m[1])
				continue
			}
			if fragment != "" && strings.HasSuffix(path, ".md") && !anchors(string(text))[fragment] {
				t.Errorf("%s links %s, but no heading there is #%s", name, m[1], fragment)
			}
		}
	}
}

func TestAnchors(t *testing.T) {
	got := anchors("# Guide\n## 3. Read the route's status\n### Renew a member's token\n## 6. Ask why: `gatehousectl explain`\n")
	for _, want := range []string{"guide", "3-read-the-routes-status", "renew-a-members-token", "6-ask-why-gatehousectl-explain"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
}
