module github.com/rampart-gw/rampart

go 1.27.3

require go.yaml.in/yaml/v3 v3.0.6
