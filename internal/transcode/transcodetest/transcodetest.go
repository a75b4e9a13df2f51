// Package transcodetest builds binary FileDescriptorSets from .proto
// sources for the transcoding tests, with github.com/bufbuild/protocompile
// (no protoc needed). google/api/annotations.proto and http.proto come
// from the descriptors linked into the binary (genproto), the
// google/protobuf files from protocompile's standard imports.
package transcodetest

import (
	"context"
	"io"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "google.golang.org/genproto/googleapis/api/annotations" // google/api/annotations.proto, http.proto
)

// Build compiles the .proto sources (file name to text) and returns the
// binary FileDescriptorSet of the named files and all their imports, as
// protoc --descriptor_set_out --include_imports writes it.
func Build(sources map[string]string, files ...string) ([]byte, error) {
	src := &protocompile.SourceResolver{Accessor: func(path string) (io.ReadCloser, error) {
		s, ok := sources[path]
		if !ok {
			return nil, protoregistry.NotFound
		}
		return io.NopCloser(strings.NewReader(s)), nil
	}}
	linked := protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
		if !strings.HasPrefix(path, "google/api/") {
			return protocompile.SearchResult{}, protoregistry.NotFound
		}
		fd, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err != nil {
			return protocompile.SearchResult{}, err
		}
		return protocompile.SearchResult{Desc: fd}, nil
	})
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(protocompile.CompositeResolver{src, linked})}
	out, err := c.Compile(context.Background(), files...)
	if err != nil {
		return nil, err
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := 0; i < imps.Len(); i++ {
			add(imps.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	for _, f := range out {
		add(f)
	}
	return proto.Marshal(set)
}
