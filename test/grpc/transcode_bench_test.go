package grpc

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/rampart-gw/rampart/internal/transcode"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// BenchmarkTranscodeUnary compares one unary call made as REST/JSON
// (transcoded) with the same call made by a gRPC client through the same
// gateway route (proxied): the difference is the transcoder's cost. Run
// it bounded: -bench TranscodeUnary -benchtime 2000x.
func BenchmarkTranscodeUnary(b *testing.B) {
	addr, desc := startShop(b)
	g := gwtest.Start(b, transcodeDoc(addr, desc, ""))
	b.Run("rest", func(b *testing.B) {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		body := `{"id":"e","title":"a book","pages":3,"tags":["x","y"],"author":{"name":"A"}}`
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Post(g.URL+"/v1/echo", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.Run("grpc", func(b *testing.B) {
		// One client connection for every call: grpc-go's BDP PINGs once
		// got it reset after ~100 calls by the listener's PING-flood
		// limit, fixed since (PINGs earn budget from the client's other
		// frames; TestPingBudget).
		dial := func() *grpc.ClientConn {
			cc, err := grpc.NewClient(g.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			return cc
		}
		cc := dial()
		defer func() { cc.Close() }()
		set, _ := transcode.Load(desc)
		md, _ := set.Method("shop.v1.Shop/Echo")
		in := dynamicpb.NewMessage(md.Input())
		setStr(in, "id", "e")
		setStr(in, "title", "a book")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			out := dynamicpb.NewMessage(md.Output())
			if err := cc.Invoke(context.Background(), "/shop.v1.Shop/Echo", in, out); err != nil {
				b.Fatal(i, err)
			}
		}
	})
}
