package balancer

import "testing"

func TestXXH64KnownAnswers(t *testing.T) {
	// Reference values of XXH64 with seed 0; the lengths cover every branch:
	// the tail bytes, the 4-byte step, the 8-byte step and the 32-byte stripes.
	tests := []struct {
		name string
		in   string
		want uint64
	}{
		{"empty", "", 0xef46db3751d8e999},
		{"one-byte", "a", 0xd24ec4f1a98c6e5b},
		{"three-bytes", "abc", 0x44bc2cf5ad770999},
		{"four-bytes", "1234", 0xd8316e61d84f6ba4},
		{"eight-bytes", "12345678", 0xd2d02f08cf7cfd4a},
		{"fifteen-bytes", "123456789012345", 0xc377d78ade001a3c},
		{"sixteen-bytes", "1234567890123456", 0xb61c33dc6c59f270},
		{"thirty-one-bytes", "1234567890123456789012345678901", 0x8f367cb873a5376e},
		{"one-stripe", "12345678901234567890123456789012", 0x40fd1aa52d98274c},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := xxh64(tc.in, 0); got != tc.want {
				t.Fatalf("xxh64(%q) = %#016x, want %#016x", tc.in, got, tc.want)
			}
		})
	}
	if xxh64("hello", 0) == xxh64("hello", 1) {
		t.Fatal("seed does not change the hash")
	}
}
