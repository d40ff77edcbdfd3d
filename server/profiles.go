package server

import (
	"fmt"
	"net/http"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"time"
)

// Go's profiles of the process, for the admin token's holder, at the paths
// and in the formats of net/http/pprof, which is not imported: it would also
// register them, without authorization, on http.DefaultServeMux of an
// application that embeds this server. There is no cmdline, which may hold
// secrets given as flags.

// profileMaxSeconds bounds a CPU profile or a trace, within the HTTP
// server's write timeout (NewHTTPServer).
const profileMaxSeconds = 50

func (s *Server) routeProfiles() {
	s.mux.Handle("GET /debug/pprof/{$}", s.authorizeAPI(http.HandlerFunc(profileIndex)))
	s.mux.Handle("GET /debug/pprof/profile", s.authorizeAPI(http.HandlerFunc(cpuProfile)))
	s.mux.Handle("GET /debug/pprof/trace", s.authorizeAPI(http.HandlerFunc(executionTrace)))
	s.mux.Handle("GET /debug/pprof/{name}", s.authorizeAPI(http.HandlerFunc(namedProfile)))
}

// profileIndex lists the profiles.
func profileIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "profile?seconds=N  CPU profile (pprof)")
	fmt.Fprintln(w, "trace?seconds=N    execution trace (go tool trace)")
	for _, p := range pprof.Profiles() {
		fmt.Fprintf(w, "%-18s %d\n", p.Name(), p.Count())
	}
}

// profileSeconds reads the seconds parameter: 30 by default, as
// net/http/pprof's.
func profileSeconds(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	seconds := 30
	if v := r.FormValue("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > profileMaxSeconds {
			http.Error(w, fmt.Sprintf("seconds: give a whole number from 1 to %d", profileMaxSeconds), http.StatusBadRequest)
			return 0, false
		}
		seconds = n
	}
	return time.Duration(seconds) * time.Second, true
}

func cpuProfile(w http.ResponseWriter, r *http.Request) {
	d, ok := profileSeconds(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="profile"`)
	if err := pprof.StartCPUProfile(w); err != nil {
		http.Error(w, "a CPU profile is being taken already: "+err.Error(), http.StatusConflict)
		return
	}
	sleepFor(r, d)
	pprof.StopCPUProfile()
}

func executionTrace(w http.ResponseWriter, r *http.Request) {
	d, ok := profileSeconds(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="trace"`)
	if err := trace.Start(w); err != nil {
		http.Error(w, "a trace is being taken already: "+err.Error(), http.StatusConflict)
		return
	}
	sleepFor(r, d)
	trace.Stop()
}

// namedProfile writes one of the runtime's profiles (heap, goroutine, …):
// debug=1 or 2 as text, else as pprof's format.
func namedProfile(w http.ResponseWriter, r *http.Request) {
	p := pprof.Lookup(r.PathValue("name"))
	if p == nil {
		http.NotFound(w, r)
		return
	}
	debug, _ := strconv.Atoi(r.FormValue("debug"))
	if debug != 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+p.Name()+`"`)
	}
	_ = p.WriteTo(w, debug)
}

// sleepFor waits d, or until the client goes away.
func sleepFor(r *http.Request, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.Context().Done():
	}
}
