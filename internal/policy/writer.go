package policy

import "net/http"

// HeaderHook wraps w so that fn runs once, just before the final response
// header is sent (status >= 200), whether through WriteHeader, Write or
// Flush. Informational (1xx) headers pass through untouched. Other
// ResponseWriter features (Hijack, deadlines) are reached through Unwrap by
// http.ResponseController.
func HeaderHook(w http.ResponseWriter, fn func(h http.Header, status int)) http.ResponseWriter {
	return &hookWriter{ResponseWriter: w, fn: fn}
}

type hookWriter struct {
	http.ResponseWriter
	fn   func(h http.Header, status int)
	done bool
}

func (w *hookWriter) WriteHeader(status int) {
	if !w.done && status >= 200 {
		w.done = true
		w.fn(w.ResponseWriter.Header(), status)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *hookWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends the header (running the hook) and flushes.
func (w *hookWriter) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (w *hookWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
