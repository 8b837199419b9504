"""TF-Agents environments: control tasks through suite_gym with the fixed horizon preference learning needs."""
