//go:build !unix

package dotenv

// lockDir does nothing here: writes stay atomic, but two at once are not
// serialised.
func lockDir(string) (unlock func()) { return func() {} }
