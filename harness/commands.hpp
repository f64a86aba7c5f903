#pragma once
// The acceptbench subcommands. Each parses argv[0..argc) (argv[0] is its own name, where a
// program name would stand), prints its --help, and returns the process's exit code: 0 done,
// 1 a failure (or compare's regression), 2 bad input.

namespace acceptbench {

int cmd_run(int argc, char** argv);                // cmd_sweep.cpp
int cmd_sweep(int argc, char** argv);              // cmd_sweep.cpp
int cmd_experiment(int argc, char** argv);         // cmd_sweep.cpp
int cmd_compare(int argc, char** argv);            // cmd_compare.cpp
int cmd_ab(int argc, char** argv);                 // cmd_compare.cpp
int cmd_merge(int argc, char** argv);              // cmd_tools.cpp
int cmd_probe(int argc, char** argv);              // cmd_tools.cpp
int cmd_supervise(int argc, char** argv);          // cmd_tools.cpp
int cmd_export(int argc, char** argv);             // cmd_tools.cpp
int cmd_attach_cost_model(int argc, char** argv);  // cmd_tools.cpp

}  // namespace acceptbench
