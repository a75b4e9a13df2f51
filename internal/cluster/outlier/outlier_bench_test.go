package outlier

import (
	"fmt"
	"testing"
)

func benchDetector() (*Detector, []string) {
	d := New(Config{}, Deps{})
	var addrs []string
	for i := range 16 {
		addrs = append(addrs, fmt.Sprintf("10.0.0.%d:8080", i))
	}
	d.Update(addrs)
	return d, addrs
}

func BenchmarkReportSuccess(b *testing.B) {
	d, addrs := benchDetector()
	b.ReportAllocs()
	for b.Loop() {
		d.Report(addrs[3], Success)
	}
}

func BenchmarkReportServerError(b *testing.B) {
	d, addrs := benchDetector()
	b.ReportAllocs()
	for b.Loop() {
		d.Report(addrs[3], ServerError)
		d.Report(addrs[3], Success) // stay under the threshold
	}
}

func BenchmarkReportSuccessParallel(b *testing.B) {
	d, addrs := benchDetector()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Report(addrs[3], Success)
		}
	})
}

func BenchmarkEjected(b *testing.B) {
	d, addrs := benchDetector()
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Ejected(addrs[3])
	}
}
