//go:build !unix

package registry

// canSignal: there are no Unix signals here; Stop says so.
const canSignal = false

func pin(*target) sendResult { return unidentified }

func unpin(*target) {}

func sendSignal(*target, stopSignal) sendResult { return unidentified }

func holds(*target) bool { return false }
