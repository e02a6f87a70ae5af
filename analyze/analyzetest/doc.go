// Package analyzetest helps the tests of analyzers, the way net/http/httptest
// helps the tests of HTTP handlers. It is a real package, imported only by
// _test.go files, so each analyzer's tests share one copy of the plumbing:
//
//   - finding the shared capture corpus (../shared/corpus beside the module
//     root) wherever the work tree is checked out: ModuleRoot, CorpusDir,
//     Corpus;
//   - running the Wireshark command-line tools as oracles, with a timeout and
//     a failure naming the apt package when a tool is missing: Tool, Tshark,
//     TsharkWith, Editcap, Concat;
//   - running analyzers through the real capture and decode pipeline
//     (analyze.Pass) and reading the report: Run, Findings, Table, MustTable,
//     NoWarnings, Num;
//   - decoded records for allocation tests and benchmarks: Records,
//     BenchRecords, PacketAllocs, PassAllocs, BenchPackets, BenchPasses.
//
// Helpers that can fail take a testing.TB and fail the test (never skip it)
// when what they need is missing. The packages analyze, analyze/decode and
// capture cannot use it from their own in-package tests: it imports them.
package analyzetest
