package version

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// MaxReported bounds a version a proxy reports to the hub, in bytes: the
// hub keeps it per replica, writes it into status and uses it as a metric
// label, and a proxy must not be able to blow any of those up.
const MaxReported = 64

// Unknown stands for a proxy that reports no version: one built before
// proxies reported theirs.
const Unknown = "unknown"

// Reported cleans a version a proxy reports: at most MaxReported bytes of
// printable ASCII other than space and comma (anything else becomes "_"),
// so that it reads back unchanged from the phrase Replicas writes.
func Reported(v string) string {
	if v == "" {
		return Unknown
	}
	b := []byte(v[:min(len(v), MaxReported)])
	for i, c := range b {
		if c <= ' ' || c > '~' || c == ',' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Replicas counts a Gateway's connected proxy replicas by the version each
// reports. The hub writes it into the Gateway's Programmed message and
// `gatehousectl explain` reads it back: this type is the one place that
// phrase is written and read.
type Replicas map[string]int

// replicasLabel starts the phrase in a condition message.
const replicasLabel = "; proxy versions: "

// String is "v0.2.0 on 2 replicas, v0.1.0 on 1 replica", versions in
// order.
func (r Replicas) String() string {
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(r)) {
		unit := "replicas"
		if r[v] == 1 {
			unit = "replica"
		}
		parts = append(parts, fmt.Sprintf("%s on %d %s", v, r[v], unit))
	}
	return strings.Join(parts, ", ")
}

// InMessage returns message with the phrase for r at its end, in place of
// one written before; with no replicas, without it.
func (r Replicas) InMessage(message string) string {
	if i := strings.LastIndex(message, replicasLabel); i >= 0 {
		message = message[:i]
	}
	if len(r) == 0 {
		return message
	}
	return message + replicasLabel + r.String()
}

// FromMessage reads back what InMessage wrote; nil when the message has no
// such phrase (a hub older than the phrase, or no proxy connected).
func FromMessage(message string) Replicas {
	i := strings.LastIndex(message, replicasLabel)
	if i < 0 {
		return nil
	}
	out := Replicas{}
	for part := range strings.SplitSeq(message[i+len(replicasLabel):], ", ") {
		v, rest, ok := strings.Cut(part, " on ")
		if !ok {
			return nil
		}
		count, _, _ := strings.Cut(rest, " ")
		n, err := strconv.Atoi(count)
		if err != nil || v == "" {
			return nil
		}
		out[v] = n
	}
	return out
}
