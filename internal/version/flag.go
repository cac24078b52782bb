package version

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Flag is the value of a --version flag: set, it prints the program's
// version line and exits, as -h prints the usage, before the flags that
// follow are read or checked.
//
//	flag.Var(version.Flag("gatehouse"), "version", "print the version and exit")
func Flag(program string) flag.Value {
	return &printFlag{program: program, out: os.Stdout, exit: os.Exit}
}

type printFlag struct {
	program string
	out     io.Writer
	exit    func(int)
}

// IsBoolFlag lets --version stand without a value.
func (f *printFlag) IsBoolFlag() bool { return true }

func (f *printFlag) String() string { return "false" }

func (f *printFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("--version takes no value: %w", err)
	}
	if v {
		fmt.Fprintln(f.out, Get().Line(f.program))
		f.exit(0)
	}
	return nil
}
