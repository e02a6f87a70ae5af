package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/bpf"
)

// DefaultSnapLen is the snapshot length used when none is given, as tcpdump.
const DefaultSnapLen = 262144

// Filter is a capture filter (tcpdump syntax) compiled to classic BPF for
// one link type.
type Filter struct {
	Expr     string
	LinkType uint16
	// Program returns the snapshot length for an accepted frame and 0 for a
	// rejected one.
	Program []bpf.RawInstruction
	// Compiler is "tcpdump" (the local tcpdump -ddd) or "native".
	Compiler string
}

// Filter compiler names.
const (
	CompilerTcpdump = "tcpdump"
	CompilerNative  = "native"
)

// tcpdumpTimeout bounds one tcpdump -ddd run.
const tcpdumpTimeout = 10 * time.Second

// CompileFilter compiles a tcpdump-syntax expression for frames of
// linkType. It uses the local tcpdump (tcpdump -ddd -y LINKTYPE, which
// compiles without capturing) when one is on PATH, so every expression
// tcpdump knows works, and the native compiler (CompileFilterNative)
// otherwise. snapLen is what the program returns for accepted frames
// (0: DefaultSnapLen). Every error names the expression; a *FilterError
// is a syntax or semantic error in it.
func CompileFilter(expr string, linkType uint16, snapLen int) (*Filter, error) {
	if _, err := exec.LookPath("tcpdump"); err == nil {
		prog, err := CompileFilterTcpdump(context.Background(), expr, linkType, snapLen)
		var fe *FilterError
		if err == nil || errors.As(err, &fe) {
			if err != nil {
				return nil, err
			}
			return &Filter{Expr: expr, LinkType: linkType, Program: prog, Compiler: CompilerTcpdump}, nil
		}
		// tcpdump could not run at all: fall back to the native compiler.
	}
	prog, err := CompileFilterNative(expr, linkType, snapLen)
	if err != nil {
		return nil, err
	}
	return &Filter{Expr: expr, LinkType: linkType, Program: prog, Compiler: CompilerNative}, nil
}

func snapOrDefault(snapLen int) uint32 {
	if snapLen <= 0 {
		return DefaultSnapLen
	}
	return uint32(snapLen)
}

// CompileFilterNative compiles expr without tcpdump. It supports host,
// net (CIDR or partial dotted), port (number or common service name) with
// src/dst qualifiers; ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6, igmp,
// esp, ah; [ip|ip6] proto N; and/or/not and parentheses, generating the
// same tests as libpcap for Ethernet, raw IP and Linux cooked link types.
// An empty expression accepts every frame.
func CompileFilterNative(expr string, linkType uint16, snapLen int) ([]bpf.RawInstruction, error) {
	ly, err := layoutFor(linkType)
	if err != nil {
		return nil, &FilterError{Expr: expr, Pos: -1, Msg: err.Error()}
	}
	n, err := parseFilter(expr)
	if err != nil {
		return nil, err
	}
	b := btrue
	if n != nil {
		if b, err = ly.lower(expr, n); err != nil {
			return nil, err
		}
	}
	if b.kind == bFalse {
		return nil, &FilterError{Expr: expr, Pos: -1, Msg: fmt.Sprintf("expression rejects all packets on link type %s", ly.tcpdump)}
	}
	prog, err := program(b, snapOrDefault(snapLen))
	if err != nil {
		return nil, &FilterError{Expr: expr, Pos: -1, Msg: err.Error()}
	}
	return prog, nil
}

// CompileFilterTcpdump compiles expr with `tcpdump -ddd -s SNAPLEN -y NAME
// EXPR`, which needs no privileges and captures nothing. A rejected
// expression is a *FilterError carrying tcpdump's message; other errors
// mean tcpdump could not be run.
func CompileFilterTcpdump(ctx context.Context, expr string, linkType uint16, snapLen int) ([]bpf.RawInstruction, error) {
	ly, err := layoutFor(linkType)
	if err != nil {
		return nil, &FilterError{Expr: expr, Pos: -1, Msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, tcpdumpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tcpdump", "-ddd", "-s", strconv.Itoa(int(snapOrDefault(snapLen))), "-y", ly.tcpdump, "--", expr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "tcpdump: "))
			if msg == "" {
				msg = err.Error()
			}
			return nil, &FilterError{Expr: expr, Pos: -1, Msg: "tcpdump: " + msg}
		}
		return nil, fmt.Errorf("compile filter %q with tcpdump: %w", expr, err)
	}
	prog, err := parseDDD(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("compile filter %q with tcpdump: %w", expr, err)
	}
	return prog, nil
}

// parseDDD parses tcpdump -ddd output: a count, then "code jt jf k" lines.
func parseDDD(out string) ([]bpf.RawInstruction, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	if !sc.Scan() {
		return nil, errors.New("empty -ddd output")
	}
	n, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil || n <= 0 || n > 4096 {
		return nil, fmt.Errorf("bad instruction count %q in -ddd output", sc.Text())
	}
	prog := make([]bpf.RawInstruction, 0, n)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("bad -ddd line %q", sc.Text())
		}
		var v [4]uint64
		for i, s := range f {
			if v[i], err = strconv.ParseUint(s, 10, 32); err != nil {
				return nil, fmt.Errorf("bad -ddd line %q", sc.Text())
			}
		}
		if v[1] > 255 || v[2] > 255 || v[0] > 0xffff {
			return nil, fmt.Errorf("bad -ddd line %q", sc.Text())
		}
		prog = append(prog, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	if len(prog) != n {
		return nil, fmt.Errorf("-ddd output announced %d instructions, holds %d", n, len(prog))
	}
	return prog, nil
}

// FilterMatcher runs a compiled program in user space (golang.org/x/net/bpf's
// VM), for tests and for frames the kernel filter could not see.
type FilterMatcher struct{ vm *bpf.VM }

// NewFilterMatcher prepares prog for Match.
func NewFilterMatcher(prog []bpf.RawInstruction) (*FilterMatcher, error) {
	ins, ok := bpf.Disassemble(prog)
	if !ok {
		return nil, errors.New("filter program holds an instruction the user-space VM cannot run")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		return nil, fmt.Errorf("filter program: %w", err)
	}
	return &FilterMatcher{vm: vm}, nil
}

// Match reports whether the program accepts the frame, and the length it
// would keep.
func (m *FilterMatcher) Match(frame []byte) (bool, int) {
	n, err := m.vm.Run(frame)
	if err != nil {
		return false, 0
	}
	return n > 0, n
}
