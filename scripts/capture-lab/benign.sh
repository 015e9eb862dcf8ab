# benign scenarios (sourced by capture-lab.sh)
