package kubelet

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// defaultFileMode is the mode of volume files without an explicit one.
const defaultFileMode = 0o644

// mountSpec is one volume mount of a container.
type mountSpec struct {
	source   string // on the host: a directory, or a file for a subPath
	target   string // absolute path inside the container
	readOnly bool
}

// prepareMounts materializes the volumes a container mounts and pairs
// each with its mountPath.
func (w *podWorker) prepareMounts(pod *corev1.Pod, c corev1.Container) ([]mountSpec, error) {
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	var mounts []mountSpec
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			return nil, waiting("CreateContainerConfigError", "volume mount %q names no volume of the pod", vm.Name)
		}
		if !filepath.IsAbs(vm.MountPath) {
			return nil, waiting("CreateContainerConfigError", "mountPath %q is not absolute", vm.MountPath)
		}
		dir, readOnly, err := w.materialize(pod, v)
		if err != nil {
			return nil, err
		}
		source := dir
		if vm.SubPath != "" {
			if !validRelPath(vm.SubPath) {
				return nil, waiting("CreateContainerConfigError", "subPath %q must be a relative path without '..'", vm.SubPath)
			}
			source = filepath.Join(dir, vm.SubPath)
			if _, err := os.Stat(source); errors.Is(err, fs.ErrNotExist) {
				if err := os.MkdirAll(source, 0o755); err != nil {
					return nil, fmt.Errorf("creating subPath %s: %w", vm.SubPath, err)
				}
			}
		}
		mounts = append(mounts, mountSpec{source: source, target: filepath.Clean(vm.MountPath), readOnly: readOnly || vm.ReadOnly})
	}
	sa, err := w.serviceAccountMount(pod, c)
	if err != nil {
		return nil, err
	}
	return append(mounts, sa...), nil
}

// materialize writes a volume into the Pod's directory once and returns
// that directory, and whether the volume is read-only by nature.
func (w *podWorker) materialize(pod *corev1.Pod, v corev1.Volume) (string, bool, error) {
	run := w.cur
	readOnly := v.EmptyDir == nil
	if dir, ok := run.volumes[v.Name]; ok {
		return dir, readOnly, nil
	}
	var files []volumeFile
	var err error
	switch {
	case v.EmptyDir != nil:
	case v.Secret != nil:
		files, err = w.secretFiles(pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.DefaultMode, ptrTrue(v.Secret.Optional))
	case v.ConfigMap != nil:
		files, err = w.configMapFiles(pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.DefaultMode, ptrTrue(v.ConfigMap.Optional))
	case v.Projected != nil:
		files, err = w.projectedFiles(pod, v.Projected)
	case v.DownwardAPI != nil:
		files, err = w.downwardFiles(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
	default:
		err = waiting("CreateContainerConfigError", "volume %q: this volume type is not supported by the fake kubelet", v.Name)
	}
	if err != nil {
		return "", false, err
	}
	dir := filepath.Join(run.dir, "volumes", v.Name)
	if err := writeVolume(dir, files); err != nil {
		return "", false, fmt.Errorf("volume %q: %w", v.Name, err)
	}
	run.volumes[v.Name] = dir
	return dir, readOnly, nil
}

// volumeFile is one file of a Secret, ConfigMap, projected or downward API
// volume.
type volumeFile struct {
	path string
	data []byte
	mode fs.FileMode
}

func (w *podWorker) secretFiles(namespace, name string, items []corev1.KeyToPath, defaultMode *int32, optional bool) ([]volumeFile, error) {
	secret, err := w.getSecret(namespace, name, optional)
	if err != nil || secret == nil {
		return nil, err
	}
	return keyFiles(secret.Data, items, defaultMode, optional, "secret "+name)
}

func (w *podWorker) configMapFiles(namespace, name string, items []corev1.KeyToPath, defaultMode *int32, optional bool) ([]volumeFile, error) {
	cm, err := w.getConfigMap(namespace, name, optional)
	if err != nil || cm == nil {
		return nil, err
	}
	data := map[string][]byte{}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	return keyFiles(data, items, defaultMode, optional, "configmap "+name)
}

func (w *podWorker) projectedFiles(pod *corev1.Pod, p *corev1.ProjectedVolumeSource) ([]volumeFile, error) {
	var all []volumeFile
	for _, s := range p.Sources {
		var files []volumeFile
		var err error
		switch {
		case s.Secret != nil:
			files, err = w.secretFiles(pod.Namespace, s.Secret.Name, s.Secret.Items, p.DefaultMode, ptrTrue(s.Secret.Optional))
		case s.ConfigMap != nil:
			files, err = w.configMapFiles(pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, p.DefaultMode, ptrTrue(s.ConfigMap.Optional))
		case s.DownwardAPI != nil:
			files, err = w.downwardFiles(pod, s.DownwardAPI.Items, p.DefaultMode)
		case s.ServiceAccountToken != nil:
			files, err = w.projectedToken(pod, s.ServiceAccountToken, p.DefaultMode)
		default:
			err = waiting("CreateContainerConfigError", "projected volume source of an unsupported kind")
		}
		if err != nil {
			return nil, err
		}
		all = append(all, files...)
	}
	return all, nil
}

// projectedToken is a serviceAccountToken source: a token for its audience
// (the API server's when empty), bound to the Pod.
func (w *podWorker) projectedToken(pod *corev1.Pod, s *corev1.ServiceAccountTokenProjection, defaultMode *int32) ([]volumeFile, error) {
	var audiences []string
	if s.Audience != "" {
		audiences = []string{s.Audience}
	}
	seconds := int64(3600) // the API's default
	if s.ExpirationSeconds != nil {
		seconds = *s.ExpirationSeconds
	}
	token, err := w.podToken(pod, audiences, seconds)
	if err != nil {
		return nil, err
	}
	return []volumeFile{{path: s.Path, data: []byte(token), mode: fileMode(defaultMode)}}, nil
}

func (w *podWorker) downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) ([]volumeFile, error) {
	var files []volumeFile
	for _, item := range items {
		if item.FieldRef == nil {
			return nil, waiting("CreateContainerConfigError", "downward API item %q: only fieldRef is supported", item.Path)
		}
		value, err := w.podField(pod, item.FieldRef.FieldPath)
		if err != nil {
			return nil, err
		}
		mode := item.Mode
		if mode == nil {
			mode = defaultMode
		}
		files = append(files, volumeFile{path: item.Path, data: []byte(value), mode: fileMode(mode)})
	}
	return files, nil
}

// keyFiles maps the keys of a Secret or ConfigMap to files: every key
// under its own name, or only the listed items under their paths.
func keyFiles(data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional bool, what string) ([]volumeFile, error) {
	var files []volumeFile
	if len(items) == 0 {
		for key, value := range data {
			files = append(files, volumeFile{path: key, data: value, mode: fileMode(defaultMode)})
		}
		return files, nil
	}
	for _, item := range items {
		value, ok := data[item.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, waiting("ContainerCreating", "%s has no key %q", what, item.Key)
		}
		mode := item.Mode
		if mode == nil {
			mode = defaultMode
		}
		files = append(files, volumeFile{path: item.Path, data: value, mode: fileMode(mode)})
	}
	return files, nil
}

func fileMode(m *int32) fs.FileMode {
	if m == nil {
		return defaultFileMode
	}
	return fs.FileMode(*m) & fs.ModePerm
}

// writeVolume replaces dir with the given files.
func writeVolume(dir string, files []volumeFile) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if !validRelPath(f.path) {
			return fmt.Errorf("path %q must be relative and without '..'", f.path)
		}
		path := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, f.data, f.mode); err != nil {
			return err
		}
		// WriteFile applies the umask; the volume's mode is exact.
		if err := os.Chmod(path, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func validRelPath(p string) bool {
	if p == "" || filepath.IsAbs(p) {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return false
		}
	}
	return true
}

// containerScript is the shell script a container starts with, in its own
// mount and UTS namespaces: it sets the hostname, bind-mounts every volume
// at its mountPath, changes to the working directory and executes "$@".
//
// A mountPath that exists on the host is simply mounted over. One that
// does not needs its directory created; to leave the host's file system
// alone, the nearest existing ancestor gets a private overlay (upper layer
// on a tmpfs in this mount namespace) in which the directory is created,
// and any mounts below that ancestor are mounted again on top.
//
// The image's binary is a file of the host; a volume mounted over its
// directory (an emptyDir at /tmp, where tests keep binaries) would hide
// it, where a real image's files stay. The script then opens the binary
// before mounting and executes it through that descriptor, which stays
// open in the container's process.
func (k *Kubelet) containerScript(mounts []mountSpec, scratch, hostname, workDir, binary string) (string, error) {
	scratch, err := filepath.EvalSymlinks(scratch)
	if err != nil {
		return "", err
	}
	for i := range mounts {
		if mounts[i].target, err = canonical(mounts[i].target); err != nil {
			return "", err
		}
	}
	sort.SliceStable(mounts, func(i, j int) bool { return mounts[i].target < mounts[j].target })

	lines := []string{"set -e", "printf %s " + shellQuote(hostname) + " > /proc/sys/kernel/hostname"}
	hidden := hides(mounts, binary)
	if hidden {
		lines = append(lines, `exec 9<"$1"`)
	}
	overlays, err := overlaysFor(mounts, scratch)
	if err != nil {
		return "", err
	}
	if len(overlays) > 0 {
		lines = append(lines, k.tools.mount+" -t tmpfs -o mode=0700 tmpfs "+shellQuote(scratch))
	}
	for i, dir := range overlays {
		lines = append(lines, k.overlayLines(dir, filepath.Join(scratch, "o"+strconv.Itoa(i)))...)
	}
	var readOnly []string // after all binds: nested mountpoints may need creating
	for _, m := range mounts {
		lines = append(lines, k.bindLines(m)...)
		if m.readOnly {
			readOnly = append(readOnly, k.tools.mount+" -o remount,bind,ro "+shellQuote(m.target))
		}
	}
	lines = append(lines, readOnly...)
	if workDir == "" {
		workDir = "/"
	}
	lines = append(lines, "cd "+shellQuote(workDir))
	if hidden {
		lines = append(lines, "shift", `exec /proc/self/fd/9 "$@"`)
	} else {
		lines = append(lines, `exec "$@"`)
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// hides reports whether a mount covers binary.
func hides(mounts []mountSpec, binary string) bool {
	binary, err := filepath.EvalSymlinks(binary)
	if err != nil {
		return false
	}
	for _, m := range mounts {
		if binary == m.target || strings.HasPrefix(binary, m.target+"/") || m.target == "/" {
			return true
		}
	}
	return false
}

// canonical resolves symlinks in the existing part of path.
func canonical(path string) (string, error) {
	existing, rest := path, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		if existing == "/" {
			break
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = filepath.Dir(existing)
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", existing, err)
	}
	return filepath.Join(resolved, rest), nil
}

// overlaysFor lists the directories that need an overlay so that missing
// mountpoints can be created: for every missing target not inside another
// volume, its nearest existing ancestor; ancestors inside others dropped.
func overlaysFor(mounts []mountSpec, scratch string) ([]string, error) {
	var dirs []string
	for i, m := range mounts {
		if insideEarlier(mounts[:i], m.target) {
			continue // created inside that volume
		}
		if _, err := os.Stat(m.target); err == nil {
			continue
		}
		dir := filepath.Dir(m.target)
		for {
			if fi, err := os.Stat(dir); err == nil {
				if !fi.IsDir() {
					return nil, fmt.Errorf("mountPath %s: %s is not a directory", m.target, dir)
				}
				break
			}
			dir = filepath.Dir(dir)
		}
		switch {
		case dir == "/":
			return nil, fmt.Errorf("mountPath %s needs a new top-level directory, which the fake kubelet cannot create", m.target)
		case isUnder(scratch, dir):
			return nil, fmt.Errorf("mountPath %s needs an overlay on %s, which holds the kubelet's state directory", m.target, dir)
		case strings.ContainsAny(dir+scratch, ",:\\"):
			return nil, fmt.Errorf("mountPath %s: cannot overlay %s: the path has characters overlay options cannot carry", m.target, dir)
		}
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	var out []string
	for _, d := range dirs {
		if len(out) > 0 && isUnder(d, out[len(out)-1]) {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

func insideEarlier(earlier []mountSpec, target string) bool {
	for _, e := range earlier {
		if target != e.target && isUnder(target, e.target) {
			return true
		}
	}
	return false
}

// isUnder reports whether path is dir or below it.
func isUnder(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// overlayLines put a writable overlay on dir, with upper and work
// directories below state, and mount dir's submounts again on top.
func (k *Kubelet) overlayLines(dir, state string) []string {
	q := shellQuote
	upper, work, orig := filepath.Join(state, "upper"), filepath.Join(state, "work"), filepath.Join(state, "orig")
	lines := []string{k.tools.mkdir + " -p " + q(upper) + " " + q(work) + " " + q(orig)}
	subs := submounts(dir)
	if len(subs) > 0 {
		lines = append(lines, k.tools.mount+" --rbind "+q(dir)+" "+q(orig))
	}
	lines = append(lines, k.tools.mount+" -t overlay overlay -o "+q("lowerdir="+dir+",upperdir="+upper+",workdir="+work)+" "+q(dir))
	for _, s := range subs {
		rel := strings.TrimPrefix(s, dir+"/")
		lines = append(lines, "[ ! -e "+q(s)+" ] || "+k.tools.mount+" --rbind "+q(filepath.Join(orig, rel))+" "+q(s))
	}
	return lines
}

// bindLines create the mountpoint when missing and bind the volume there.
func (k *Kubelet) bindLines(m mountSpec) []string {
	q := shellQuote
	var lines []string
	if fi, err := os.Stat(m.source); err == nil && !fi.IsDir() {
		lines = append(lines, k.tools.mkdir+" -p "+q(filepath.Dir(m.target)), "[ -e "+q(m.target)+" ] || "+k.tools.touch+" "+q(m.target))
	} else {
		lines = append(lines, k.tools.mkdir+" -p "+q(m.target))
	}
	return append(lines, k.tools.mount+" --bind "+q(m.source)+" "+q(m.target))
}

// submounts are the topmost mount points strictly below dir, from this
// process's mount table (a new mount namespace starts as a copy of it).
func submounts(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var all []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 5 {
			continue
		}
		if p := unescapeMountPath(fields[4]); p != dir && isUnder(p, dir) {
			all = append(all, p)
		}
	}
	sort.Strings(all)
	var top []string
	for _, p := range all {
		if len(top) > 0 && isUnder(p, top[len(top)-1]) {
			continue
		}
		top = append(top, p)
	}
	return top
}

// unescapeMountPath undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
