package h2

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestBodyBufferTiers writes response bodies in pieces that start in the
// 2 KiB buffer, outgrow it, fill the 16 KiB one and pass it, through Write
// and WriteString: the client must get the bytes in order, with a
// content-length whenever the body fit the 16 KiB buffer.
func TestBodyBufferTiers(t *testing.T) {
	cases := []struct {
		name   string
		pieces []int
		str    bool // every other piece through WriteString
	}{
		{"one small", []int{100}, false},
		{"exactly small", []int{smallBufSize}, false},
		{"small then outgrow", []int{1000, 1500}, false},
		{"small then outgrow by string", []int{2000, 100, 3000}, true},
		{"first write large", []int{smallBufSize + 1}, false},
		{"fill big exactly", []int{1, bufSize - 1}, false},
		{"small then beyond big", []int{2000, 20000}, false},
		{"many small past big", []int{1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500}, true},
		{"string first", []int{10, 5000}, true},
	}
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i, f := range strings.Split(r.URL.Query().Get("p"), ",") {
			n, _ := strconv.Atoi(f)
			piece := bytes.Repeat([]byte{byte('a' + i%26)}, n)
			if r.URL.Query().Get("s") == "1" && i%2 == 1 {
				io.WriteString(w, string(piece))
			} else {
				w.Write(piece)
			}
		}
	})}
	addr := serve(t, s)
	cl := h2cClient()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want bytes.Buffer
			var ps []string
			for i, n := range tc.pieces {
				want.Write(bytes.Repeat([]byte{byte('a' + i%26)}, n))
				ps = append(ps, strconv.Itoa(n))
			}
			u := "http://" + addr + "/?p=" + strings.Join(ps, ",")
			if tc.str {
				u += "&s=1"
			}
			resp, err := cl.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("body: got %d bytes, want %d (or different bytes)", len(got), want.Len())
			}
			if want.Len() <= bufSize && resp.ContentLength != int64(want.Len()) {
				t.Errorf("content-length %d, want %d", resp.ContentLength, want.Len())
			}
			if want.Len() > bufSize && resp.ContentLength != -1 {
				t.Errorf("content-length %d for a body beyond the buffer, want none", resp.ContentLength)
			}
		})
	}
}
