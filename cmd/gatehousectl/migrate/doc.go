// Package migrate converts Kubernetes Ingress objects, including the
// ingress-nginx annotations real clusters carry, into Gateway API HTTPRoutes
// attached to one shared Gateway. It is the engine behind
// `gatehousectl migrate ingress`: a pure function from objects to routes plus
// a list of Notes, one for everything that could not be carried over, each
// saying what a person has to do about it. Nothing is dropped silently.
//
// # Routes
//
// An Ingress becomes one HTTPRoute per distinct host of its rules, in the
// Ingress's namespace, named after the Ingress when it has one host and
// `<ingress>-<host>` (dots as dashes, `*` as "wildcard", no host as
// "any-host") when it has several. Wildcard hosts stay wildcard hostnames; a
// rule without a host becomes a route without hostnames, which on a shared
// Gateway matches every hostname no other route claims, so it gets a Note.
// Names are DNS-1123, at most 63 characters (longer ones are cut and end in a
// hash of the full name); clashes get a hash suffix. Routes come out sorted by
// namespace and name, so the output is stable.
//
// Every route's parentRef names Options.Gateway (namespace always set) and
// Options.SectionName when given. A route exceeding the Gateway API limits (16
// rules, 64 matches per rule, 128 matches in all) is split into `<name>`,
// `<name>-2`, ...; the precedence rules of HTTPRoute are across routes, so the
// split does not change which rule serves a request.
//
// # Paths and backends
//
//   - Exact stays Exact, Prefix becomes PathPrefix (both element-wise), no path
//     is PathPrefix "/".
//   - ImplementationSpecific is read as ingress-nginx reads it. A plain path
//     becomes PathPrefix with a Note (nginx matched a plain string prefix, so
//     /api also caught /apix). A regular expression path (use-regex, a
//     rewrite-target with capture groups, or regex characters in the path)
//     becomes PathPrefix P when it has one of the common shapes `P(/|$)(.*)`,
//     `P/(.*)`, `P(.*)`, `P.*`, Exact P for `^P$`, and otherwise
//     RegularExpression `^(?i)<path>.*` (nginx matched `~* ^<path>`), each
//     with a Note saying how matching changed.
//   - Paths with the same backend, filters and timeouts share a rule; a path
//     whose rewrite needs ReplacePrefixMatch gets a rule of its own.
//   - A Service port given by name is resolved through the services map. If it
//     cannot be resolved, or the backend is a `resource`, the rule is kept
//     without that backend, so its requests get HTTP 500 instead of falling
//     through to a shorter path, and a Note says what to fix.
//   - spec.defaultBackend becomes a last rule PathPrefix "/" in each of the
//     Ingress's routes (unless a path "/" already covers it), as ingress-nginx
//     does. An Ingress with only a defaultBackend becomes a route without
//     hostnames (Note: a catch-all on a shared Gateway).
//   - spec.tls cannot move to a route: a Note per entry names the Secret and
//     the hosts the shared Gateway's HTTPS listener has to cover.
//
// # ingress-nginx annotations
//
//   - rewrite-target without `$n` replaces the whole path (nginx rewrites the
//     full URI): URLRewrite ReplaceFullPath. `/$2` on `P(/|$)(.*)` (and `/$1`
//     on `P/(.*)`) is URLRewrite ReplacePrefixMatch "/" on PathPrefix P;
//     `X/$2` is ReplacePrefixMatch X with a Note. Other forms: Note, and the
//     path gets no rule (forwarding it unrewritten would be wrong).
//   - ssl-redirect (on by default for hosts in spec.tls) and force-ssl-redirect:
//     the route attaches to the Gateway's port-443 listener only (parentRef
//     port 443), and a second route `<name>-https-redirect` on the port-80
//     listener answers every plain-HTTP request for those hosts with a 301 to
//     https. A Note says so; ssl-redirect "false" keeps one route on both.
//   - permanent-redirect / temporal-redirect (and permanent-redirect-code):
//     every rule of the Ingress becomes a RequestRedirect to that URL (scheme,
//     hostname, port, full path), 301 / 302 by default.
//   - app-root: a rule Exact "/" redirecting (302) to the app root.
//   - proxy-read-timeout / proxy-send-timeout: rule timeouts.backendRequest,
//     the larger of the two, with a Note on the difference in meaning.
//   - enable-cors and the cors-* annotations: a CORS filter with
//     ingress-nginx's defaults.
//   - backend-protocol HTTPS, GRPC, GRPCS, H2C: a Note saying what to set on
//     the Service port (appProtocol kubernetes.io/h2c) or which
//     BackendTLSPolicy to create.
//   - canary: a canary Ingress produces no route of its own. canary-weight
//     (with canary-weight-total, default 100) splits the primary's matching
//     path (same namespace, host and path) into weighted backendRefs;
//     canary-by-header adds a rule with a header match (value
//     canary-by-header-value, or "always" to the canary and "never" to the
//     primary). canary-by-cookie and canary-by-header-pattern get Notes.
//   - use-regex is consumed by the path rules; kubernetes.io/ingress.class and
//     spec.ingressClassName select Ingresses for Options.IngressClass.
//   - Any other nginx.ingress.kubernetes.io annotation, and annotations of
//     other ingress controllers or of cert-manager, get a Note naming them.
package migrate
