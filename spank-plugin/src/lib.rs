// placeholder: the SPANK plugin comes with the plugin issue
