//go:build ignore

// gen prints gotestwaf's false-pos texts (the YAML file named by its
// argument) as ms.c reads them: one request a line, METHOD, target,
// Content-Type ("-" for none) and body ("-" for none, CRLF as \n), tab
// separated; each text URL-encoded with url.PathEscape (gotestwaf's URL
// encoder) in a query parameter, a form field and a multipart field, as
// gotestwaf's URLParam, HTMLForm and HTMLMultipartForm placeholders send it.
package main

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/url"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var doc struct{ Payload []string }
	if err := yaml.Unmarshal(data, &doc); err != nil {
		panic(err)
	}
	for _, p := range doc.Payload {
		enc := url.PathEscape(p)
		fmt.Printf("GET\t/?a1b2c3=%s\t-\t-\n", enc)
		fmt.Printf("POST\t/\tapplication/x-www-form-urlencoded\ta1b2c3=%s\n", enc)
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		w.SetBoundary("XyZboundary0123456789")
		fw, _ := w.CreateFormField("a1b2c3")
		fw.Write([]byte(enc))
		w.Close()
		fmt.Printf("POST\t/\t%s\t%s\n", w.FormDataContentType(), strings.ReplaceAll(b.String(), "\r\n", `\n`))
	}
}
