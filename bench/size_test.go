package bench_test

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1073741824", 1 << 30},
		{"256MiB", 256 << 20},
		{"1GiB", 1 << 30},
		{"4 GiB", 4 << 30},
		{"512KiB", 512 << 10},
		{"64M", 64 << 20},
		{"100MB", 100e6},
		{"1kB", 1000},
		{"7B", 7},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "MiB", "-1GiB", "0", "1.5GiB", "12XB", "9999999999TiB"} {
		t.Run("bad/"+bad, func(t *testing.T) {
			if got, err := parseSize(bad); err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", bad, got)
			}
		})
	}
}

func TestSizeName(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{1 << 30, "1GiB"},
		{256 << 20, "256MiB"},
		{3 << 30, "3GiB"},
		{1536 << 20, "1536MiB"},
		{4096, "4KiB"},
		{1000, "1000B"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := sizeName(tt.in); got != tt.want {
				t.Errorf("sizeName(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
