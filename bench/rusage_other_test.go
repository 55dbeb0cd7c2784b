//go:build !unix

package bench_test

import "os"

// maxRSS is not available on this platform.
func maxRSS(*os.ProcessState) (int64, bool) { return 0, false }
