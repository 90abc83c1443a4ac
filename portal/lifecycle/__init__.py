"""Operations on whole tenants, each a job or a transition: provisioning and import
(provisioning.py, as a saga of steps with undos: saga.py), suspension and resumption
(states.py), export (exports.py, over the COPY path in copying.py), deprovisioning and
purging (retire.py), the tenant schema upgrade runner (upgrade.py), placements
(placements.py), storage in each tier (storage.py), and the workers' entry (dispatch.py)."""
