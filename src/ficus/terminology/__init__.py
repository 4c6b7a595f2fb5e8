"""The terminology service: `$expand`, `$validate-code`, `$lookup`, `$subsumes`, `$translate`.

Content comes from the shipped packages (R4 core, HL7 Terminology), from CodeSystem, ValueSet
and ConceptMap resources stored in the server or passed with a call (`tx-resource`), and from
publishers' releases loaded into the database (`loaders`, `ficus terminology load`).

Modules: `model` (the code system interface), `codesystems` (CodeSystem resources), `loaded`
(database code systems), `packages` (the shipped packages' index), `context` and `service`
(resolving canonical URLs and versions), `filters`, `expand`, `membership`, `validate`,
`lookup`, `conceptmaps`, `languages`, `status`, `issues`, `params`, `operations` (the REST
handlers; importing it registers them), `inprocess` (the service as search and validation ask
it) and `cli`.
"""
