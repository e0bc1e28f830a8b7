package registry

// Direct turns the cross-process queue off for r (see Registry.direct): the
// benchmarks compare the queue with plain lock waits in one run.
func Direct(r *Registry) { r.direct = true }
