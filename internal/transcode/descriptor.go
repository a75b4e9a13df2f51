package transcode

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	_ "google.golang.org/genproto/googleapis/rpc/errdetails" // google.rpc error details in google.rpc.Status bodies
)

// Set is a loaded descriptor set: its files and the message types they
// define (for google.protobuf.Any in JSON).
type Set struct {
	Files *protoregistry.Files
	Types *dynamicpb.Types
}

// Load reads a binary FileDescriptorSet (protoc --descriptor_set_out
// --include_imports) from path. The set must be complete: every import
// of every file in it.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse decodes a binary FileDescriptorSet.
func Parse(data []byte) (*Set, error) {
	var fds descriptorpb.FileDescriptorSet
	// Options are decoded against the linked extensions, so that the
	// google.api.http annotations are read as such.
	if err := (proto.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(data, &fds); err != nil {
		return nil, fmt.Errorf("not a binary FileDescriptorSet: %w", err)
	}
	if len(fds.File) == 0 {
		return nil, errors.New("not a binary FileDescriptorSet: it holds no file")
	}
	for _, f := range fds.File {
		if f.GetName() == "" {
			return nil, errors.New("not a binary FileDescriptorSet: a file has no name")
		}
	}
	files, err := protodesc.NewFiles(&fds)
	if err != nil {
		return nil, fmt.Errorf("invalid descriptor set (built with --include_imports?): %w", err)
	}
	return &Set{Files: files, Types: dynamicpb.NewTypes(files)}, nil
}

// Service returns the service named name (pkg.Service).
func (s *Set) Service(name string) (protoreflect.ServiceDescriptor, error) {
	d, err := s.Files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("service %s is not in the descriptor set%s", name, s.suggest())
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service in the descriptor set%s", name, s.suggest())
	}
	return sd, nil
}

// Method returns the method named rpc ("pkg.Service/Method").
func (s *Set) Method(rpc string) (protoreflect.MethodDescriptor, error) {
	svc, m, ok := strings.Cut(rpc, "/")
	if !ok {
		return nil, fmt.Errorf("invalid rpc %q (want pkg.Service/Method)", rpc)
	}
	sd, err := s.Service(svc)
	if err != nil {
		return nil, err
	}
	md := sd.Methods().ByName(protoreflect.Name(m))
	if md == nil {
		return nil, fmt.Errorf("service %s has no method %s", svc, m)
	}
	return md, nil
}

// suggest lists the services the set holds, for an error about one it
// does not.
func (s *Set) suggest() string {
	var names []string
	s.Files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		for i := 0; i < f.Services().Len(); i++ {
			names = append(names, string(f.Services().Get(i).FullName()))
		}
		return len(names) < 10
	})
	if len(names) == 0 {
		return " (it holds no service)"
	}
	return " (it holds " + strings.Join(names, ", ") + ")"
}

// Rule is one REST binding to bind: a mapping of the config, or a
// google.api.http rule.
type Rule struct {
	Method, Path, Body, ResponseBody string
}

// Problem is a binding that could not be built: Where is the config
// sub-path it came from ("services[0]", "mappings[2].path"), relative to
// grpc_json.
type Problem struct {
	Where string
	Err   error
}

// Annotated returns the google.api.http rules of a method, additional
// bindings included.
func Annotated(md protoreflect.MethodDescriptor) []Rule {
	opts, ok := md.Options().(*descriptorpb.MethodOptions)
	if !ok || opts == nil || !proto.HasExtension(opts, annotations.E_Http) {
		return nil
	}
	hr, ok := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule)
	if !ok || hr == nil {
		return nil
	}
	var out []Rule
	add := func(h *annotations.HttpRule) {
		r := Rule{Body: h.GetBody(), ResponseBody: h.GetResponseBody()}
		switch p := h.GetPattern().(type) {
		case *annotations.HttpRule_Get:
			r.Method, r.Path = "GET", p.Get
		case *annotations.HttpRule_Put:
			r.Method, r.Path = "PUT", p.Put
		case *annotations.HttpRule_Post:
			r.Method, r.Path = "POST", p.Post
		case *annotations.HttpRule_Delete:
			r.Method, r.Path = "DELETE", p.Delete
		case *annotations.HttpRule_Patch:
			r.Method, r.Path = "PATCH", p.Patch
		case *annotations.HttpRule_Custom:
			r.Method, r.Path = strings.ToUpper(p.Custom.GetKind()), p.Custom.GetPath()
		default:
			return
		}
		out = append(out, r)
	}
	add(hr)
	for _, ab := range hr.GetAdditionalBindings() {
		add(ab)
	}
	return out
}

// Bind builds the binding of rule to method md.
func Bind(md protoreflect.MethodDescriptor, rule Rule) (*Binding, error) {
	if md.IsStreamingClient() {
		return nil, fmt.Errorf("method %s is client-streaming: only unary and server-streaming methods are transcoded", md.FullName())
	}
	t, err := ParseTemplate(rule.Path)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", rule.Path, err)
	}
	b := &Binding{
		HTTPMethod: strings.ToUpper(rule.Method),
		Template:   t,
		Method:     md,
		Path:       "/" + string(md.Parent().FullName()) + "/" + string(md.Name()),
		Body:       rule.Body,
	}
	in := md.Input()
	for _, v := range t.vars {
		fds, err := fieldPath(in, v.field)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", rule.Path, err)
		}
		last := fds[len(fds)-1]
		if last.IsList() || last.IsMap() || last.Kind() == protoreflect.MessageKind || last.Kind() == protoreflect.GroupKind {
			if !wrapper(last) {
				return nil, fmt.Errorf("path %q: field %s is not a scalar (a path variable binds a singular scalar field)", rule.Path, strings.Join(v.field, "."))
			}
		}
		b.pathFields = append(b.pathFields, fds)
	}
	switch rule.Body {
	case "", "*":
	default:
		fd := in.Fields().ByName(protoreflect.Name(rule.Body))
		if fd == nil {
			return nil, fmt.Errorf("body: message %s has no field %q", in.FullName(), rule.Body)
		}
		b.bodyField = fd
	}
	if rule.ResponseBody != "" {
		fd := md.Output().Fields().ByName(protoreflect.Name(rule.ResponseBody))
		if fd == nil {
			return nil, fmt.Errorf("response_body: message %s has no field %q", md.Output().FullName(), rule.ResponseBody)
		}
		b.responseField = fd
	}
	return b, nil
}

// fieldPath resolves a dotted field path (proto or JSON names) in md.
func fieldPath(md protoreflect.MessageDescriptor, path []string) ([]protoreflect.FieldDescriptor, error) {
	out := make([]protoreflect.FieldDescriptor, 0, len(path))
	for i, name := range path {
		if md == nil {
			return nil, fmt.Errorf("field %s: %s is not a message", strings.Join(path, "."), strings.Join(path[:i], "."))
		}
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			fd = md.Fields().ByJSONName(name)
		}
		if fd == nil {
			return nil, fmt.Errorf("message %s has no field %q", md.FullName(), name)
		}
		out = append(out, fd)
		if i < len(path)-1 {
			if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
				md = nil
				continue
			}
			md = fd.Message()
		}
	}
	return out, nil
}

// wrapper reports whether fd is a singular google.protobuf wrapper,
// Timestamp, Duration or FieldMask: messages written as one JSON
// string or number, so a path or query value can set them.
func wrapper(fd protoreflect.FieldDescriptor) bool {
	if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
		return false
	}
	switch fd.Message().FullName() {
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
		"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask":
		return true
	}
	return false
}

// Bindings builds the bindings of a grpc_json config: the mappings first,
// then the annotations of each service, in the descriptor's order. Every
// problem is returned, each with where it came from.
func Bindings(set *Set, services []string, mappings []Mapping) ([]*Binding, []Problem) {
	var out []*Binding
	var probs []Problem
	for j, m := range mappings {
		md, err := set.Method(m.RPC)
		if err != nil {
			probs = append(probs, Problem{Where: fmt.Sprintf("mappings[%d].rpc", j), Err: err})
			continue
		}
		b, err := Bind(md, m.Rule)
		if err != nil {
			where := fmt.Sprintf("mappings[%d]", j)
			switch {
			case strings.HasPrefix(err.Error(), "path "):
				where += ".path"
			case strings.HasPrefix(err.Error(), "body:"):
				where += ".body"
			case strings.HasPrefix(err.Error(), "response_body:"):
				where += ".response_body"
			}
			probs = append(probs, Problem{Where: where, Err: err})
			continue
		}
		out = append(out, b)
	}
	for j, name := range services {
		where := fmt.Sprintf("services[%d]", j)
		sd, err := set.Service(name)
		if err != nil {
			probs = append(probs, Problem{Where: where, Err: err})
			continue
		}
		n, before := 0, len(probs)
		for i := 0; i < sd.Methods().Len(); i++ {
			md := sd.Methods().Get(i)
			for _, rule := range Annotated(md) {
				b, err := Bind(md, rule)
				if err != nil {
					probs = append(probs, Problem{Where: where, Err: fmt.Errorf("method %s: google.api.http: %w", md.Name(), err)})
					continue
				}
				out = append(out, b)
				n++
			}
		}
		if n == 0 && len(probs) == before {
			probs = append(probs, Problem{Where: where, Err: fmt.Errorf("service %s has no google.api.http annotation (add mappings for it)", name)})
		}
	}
	return out, probs
}

// Mapping is an explicit binding: a rule for the method rpc
// ("pkg.Service/Method").
type Mapping struct {
	RPC string
	Rule
}

// anyResolver finds the types of google.protobuf.Any values: those of the
// descriptor set first, then the ones linked into the gateway (the
// google.rpc error details).
type anyResolver struct{ set *dynamicpb.Types }

func (a anyResolver) FindMessageByName(name protoreflect.FullName) (protoreflect.MessageType, error) {
	if a.set != nil {
		if t, err := a.set.FindMessageByName(name); err == nil {
			return t, nil
		}
	}
	return protoregistry.GlobalTypes.FindMessageByName(name)
}

func (a anyResolver) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	if a.set != nil {
		if t, err := a.set.FindMessageByURL(url); err == nil {
			return t, nil
		}
	}
	return protoregistry.GlobalTypes.FindMessageByURL(url)
}

func (a anyResolver) FindExtensionByName(field protoreflect.FullName) (protoreflect.ExtensionType, error) {
	if a.set != nil {
		if t, err := a.set.FindExtensionByName(field); err == nil {
			return t, nil
		}
	}
	return protoregistry.GlobalTypes.FindExtensionByName(field)
}

func (a anyResolver) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	if a.set != nil {
		if t, err := a.set.FindExtensionByNumber(message, field); err == nil {
			return t, nil
		}
	}
	return protoregistry.GlobalTypes.FindExtensionByNumber(message, field)
}
